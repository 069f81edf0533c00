"""A loaded model: the LightGBM Booster, what training recorded about it, and how to predict.

``train`` writes ``model.txt`` (LightGBM's text format) and ``metadata.json`` (feature
names, objective, classes, metrics, versions). A bare LightGBM model file trained elsewhere
is served too when it is the only model file in the directory: features are then
positional and the objective comes from the model file itself.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .codecs import Batch
from .errors import BadRequest

log = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
METADATA_FILE = "metadata.json"
_MODEL_MAGIC = b"tree\nversion=v"


class ModelLoadError(Exception):
    """The model directory holds no usable model; the message says what was found."""


class Predictor(Protocol):
    name: str

    def predict(self, values: np.ndarray) -> np.ndarray: ...


@dataclass
class BoosterPredictor:
    """LightGBM's own predictor, with a fixed thread count (workers x threads <= cores)."""

    booster: Any
    threads: int
    name: str = "lightgbm"

    def predict(self, values: np.ndarray) -> np.ndarray:
        return self.booster.predict(values, num_threads=self.threads)


@dataclass
class CompiledPredictor:
    """The same trees compiled to native code by lleaves (checked against LightGBM at compile time)."""

    compiled: Any
    threads: int
    name: str = "lleaves"

    def predict(self, values: np.ndarray) -> np.ndarray:
        threads = self.threads if values.shape[0] >= 1024 else 1
        return self.compiled.predict(values, n_jobs=threads)


def read_objective(path: Path) -> str:
    """The objective a LightGBM model file names in its header (first lines; trees not parsed)."""
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("Tree=") or line == "end of trees":
                break
            if line.startswith("objective="):
                return line.partition("=")[2].split(" ")[0] or "regression"
    return "regression"


def output_kind(objective: str) -> str:
    """regression (the value), binary (P(class 1)) or multiclass (class probabilities)."""
    if objective in ("binary", "cross_entropy", "xentropy", "cross_entropy_lambda", "xentlambda"):
        return "binary"
    if objective in ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr"):
        return "multiclass"
    return "regression"


def is_lightgbm_model_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(_MODEL_MAGIC)) == _MODEL_MAGIC
    except OSError:
        return False


def find_model_file(model_dir: Path) -> tuple[Path, Path | None]:
    """(model file, metadata file or None); raises ModelLoadError saying what the directory holds."""
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist; train first or mount a model there")
    metadata = model_dir / METADATA_FILE
    ours = model_dir / MODEL_FILE
    if ours.is_file() and metadata.is_file():
        return ours, metadata
    files = sorted(
        p for p in model_dir.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
    )
    candidates = [p for p in files if is_lightgbm_model_file(p)]
    if len(candidates) == 1:  # e.g. a bare CLI model, or SageMaker's models/<name>/model/model.txt
        beside = candidates[0].parent / METADATA_FILE
        return candidates[0], beside if beside.is_file() else None
    listing = ", ".join(str(p.relative_to(model_dir)) for p in files[:20]) or "nothing"
    if not candidates:
        hint = " (a model.tar.gz must be extracted first)" if any(p.name.endswith((".tar.gz", ".tgz")) for p in files) else ""
        raise ModelLoadError(f"no LightGBM text model in {model_dir}{hint}; found: {listing}")
    raise ModelLoadError(
        f"{len(candidates)} LightGBM models in {model_dir} ({listing}); keep one, "
        f"or name it {MODEL_FILE} next to a {METADATA_FILE}"
    )


@dataclass
class LoadedModel:
    """A Booster plus its metadata; validates request batches and produces the outputs."""

    model_file: Path
    booster: Any
    predictor: Predictor
    objective: str
    kind: str
    feature_names: tuple[str, ...]  # a bare model's are LightGBM's placeholders Column_0, Column_1, ...
    classes: tuple[Any, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def describe(self) -> str:
        names = ", ".join(self.feature_names[:8]) + (", ..." if self.num_features > 8 else "")
        return (
            f"{self.model_file} objective={self.objective} output={self.kind} "
            f"trees={self.booster.num_trees()} features={self.num_features} [{names}] predictor={self.predictor.name}"
        )

    def validate(self, batch: Batch) -> np.ndarray:
        """The batch as a C-contiguous float64 matrix in the model's feature order, or a 400 that says why."""
        if batch.columns is not None:
            return self._reorder(batch)
        width = batch.values.shape[1]
        if width != self.num_features:
            hint = " — did you include the label?" if width == self.num_features + 1 else ""
            raise BadRequest(
                f"expected {self.num_features} features, got {width}{hint}",
                expected=self.num_features,
                got=width,
            )
        return np.ascontiguousarray(batch.values, dtype=np.float64)

    def _reorder(self, batch: Batch) -> np.ndarray:
        assert batch.columns is not None
        positions = {name: index for index, name in enumerate(self.feature_names)}
        unknown = [name for name in batch.columns if name not in positions]
        if unknown:
            raise BadRequest(
                f"unknown feature(s) {', '.join(map(repr, unknown[:10]))}; the model's features are "
                f"{', '.join(self.feature_names)}",
                unknown=unknown[:10],
            )
        values = np.full((batch.rows, self.num_features), np.nan)
        values[:, [positions[name] for name in batch.columns]] = batch.values
        return values

    def predict(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.predictor.predict(values), dtype=np.float64)


def read_metadata(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None


def load_model(model_dir: Path, threads: int, compiled_object: Path | None = None) -> LoadedModel:
    """Load the model in ``model_dir``; use the lleaves-compiled object when one is given."""
    import lightgbm  # imported here: the serve supervisor must not initialise OpenMP before forking

    model_file, metadata_file = find_model_file(model_dir)
    metadata = read_metadata(metadata_file)
    try:
        booster = lightgbm.Booster(model_file=str(model_file))
    except lightgbm.basic.LightGBMError as exc:
        raise ModelLoadError(f"{model_file} is not a valid LightGBM model: {exc}") from None
    feature_names = tuple(metadata.get("feature_names") or booster.feature_name())
    objective = metadata.get("objective") or read_objective(model_file)
    predictor: Predictor = BoosterPredictor(booster, threads)
    if compiled_object is not None:
        predictor = _load_compiled(model_file, compiled_object, threads) or predictor
    classes = metadata.get("classes")
    return LoadedModel(
        model_file=model_file,
        booster=booster,
        predictor=predictor,
        objective=objective,
        kind=output_kind(objective),
        feature_names=feature_names,
        classes=tuple(classes) if classes else None,
        metadata=metadata,
    )


def _load_compiled(model_file: Path, compiled_object: Path, threads: int) -> CompiledPredictor | None:
    try:
        import lleaves

        compiled = lleaves.Model(model_file=str(model_file))
        compiled.compile(cache=str(compiled_object))
        return CompiledPredictor(compiled, threads)
    except Exception:  # a broken cache entry must never stop serving: LightGBM still predicts
        log.exception("could not load the compiled model %s; predicting with LightGBM", compiled_object)
        return None
