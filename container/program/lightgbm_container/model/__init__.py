"""The model and its metadata, shared by serving, multi-model mode and training.

- :mod:`.files`: finding a model's files, checking the model text before LightGBM reads it,
  keeping every file inside a root; imports neither numpy nor LightGBM (``serve`` uses it);
- :mod:`.batch`: decoded request rows, the contract between codecs and the model;
- :mod:`.loaded`: a loaded Booster with its metadata, validation and predictors;
- :mod:`.categories`: category text to LightGBM's codes;
- :mod:`.outputs`: every output kind, and the answer table codecs encode.
"""
