"""The model and its metadata, shared by serving, multi-model mode and training.

- :mod:`.files`: finding a model's files, checking the model text before LightGBM reads it,
  keeping every file inside a root; no LightGBM import (the serve supervisor uses it).
- :mod:`.batch`: decoded request rows, the contract between codecs and the model.
- :mod:`.loaded`: a loaded Booster with its metadata, validation and predictors.
- :mod:`.compiled`: lleaves ahead-of-time compilation, cached by model and CPU.
"""

from .batch import Batch
from .files import METADATA_FILE, MODEL_FILE, ModelLoadError, check_model_text, find_model_file
from .loaded import LoadedModel, load_compiled, load_model, output_kind

__all__ = [
    "Batch", "LoadedModel", "METADATA_FILE", "MODEL_FILE", "ModelLoadError",
    "check_model_text", "find_model_file", "load_compiled", "load_model", "output_kind",
]
