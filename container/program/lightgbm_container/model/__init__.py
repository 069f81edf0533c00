"""The model and its metadata, shared by serving, multi-model mode and training.

- :mod:`.files`: finding a model's files, checking the model text before LightGBM reads it,
  keeping every file inside a root; no LightGBM import (the serve supervisor uses it).
- :mod:`.batch`: decoded request rows, the contract between codecs and the model.
- :mod:`.loaded`: a loaded Booster with its metadata, validation and predictors.
"""

from importlib import import_module
from typing import Any

from .files import METADATA_FILE, MODEL_FILE, ModelLoadError, check_model_text, find_model_file

#: Imported on first use: ``serve`` reads model files through this package and must not pay
#: for numpy (and its memory) that only the workers need.
_LAZY = {"Batch": ".batch", "LoadedModel": ".loaded", "load_compiled": ".loaded", "load_model": ".loaded", "output_kind": ".loaded"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = [
    "Batch", "LoadedModel", "METADATA_FILE", "MODEL_FILE", "ModelLoadError",
    "check_model_text", "find_model_file", "load_compiled", "load_model", "output_kind",
]
