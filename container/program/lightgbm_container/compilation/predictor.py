"""The compiled trees as a model's predictor: an lleaves object a compile job made and checked.

A model (:class:`..model.loaded.LoadedModel`) predicts with LightGBM until its handler installs
one of these (before the workers start with ``LIGHTGBM_PREDICTOR=lleaves``, or when the
background job reports: :mod:`.switch`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import LOAD_OPTIONS

log = logging.getLogger(__name__)


@dataclass
class CompiledPredictor:
    """The same trees compiled to native code by lleaves (checked against LightGBM by the compile job)."""

    compiled: Any
    threads: int
    object_file: Path | None = None  # which compile it came from: /stats tells a quick one from the final one
    name: str = "lleaves"

    def predict(self, values: np.ndarray) -> np.ndarray:
        threads = self.threads if values.shape[0] >= 1024 else 1
        return self.compiled.predict(values, n_jobs=threads)


def load_compiled(model_file: Path, compiled_object: Path, threads: int) -> CompiledPredictor | None:
    """The lleaves object compiled from ``model_file``, or None (logged) if it cannot be loaded."""
    try:
        import lleaves  # noqa: PLC0415 - LLVM only once a compiled object exists

        compiled = lleaves.Model(model_file=str(model_file))
        compiled.compile(cache=str(compiled_object), **LOAD_OPTIONS)
        return CompiledPredictor(compiled, threads, compiled_object)
    except Exception:  # a broken cache entry must never stop serving: LightGBM still predicts
        log.exception("could not load the compiled model %s; predicting with LightGBM", compiled_object)
        return None
