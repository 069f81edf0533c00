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
from .errors import BadRequest, PayloadTooLarge, did_you_mean

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


def check_model_text(text: bytes, source: Path) -> None:
    """Refuse a model text that LightGBM would read past its end.

    LightGBM jumps to each tree at the offsets its ``tree_sizes=`` header line declares,
    inside an OpenMP loop, without bounds checks: a truncated or edited file makes it read
    out of bounds or throw inside the loop, which aborts the whole process (SIGSEGV or
    SIGABRT, not an exception). The same offsets are checked here, in Python, first; what
    passes this check LightGBM parses with ordinary, catchable errors.
    """
    if not text.startswith(_MODEL_MAGIC):
        raise ModelLoadError(f"{source} is not a LightGBM text model (it does not start with 'tree' / 'version=v')")
    trees_end = text.find(b"\nend of trees")
    if trees_end < 0:
        raise ModelLoadError(f"{source} is incomplete: it has no 'end of trees' line (truncated or partly copied?)")
    first_tree = text.find(b"\nTree=", 0, trees_end)
    header = text[: first_tree if first_tree >= 0 else trees_end]
    sizes_at = header.find(b"\ntree_sizes=")
    if sizes_at < 0:
        return  # old format: LightGBM reads the trees one after the other, bounds-checked
    sizes_line = header[sizes_at + len(b"\ntree_sizes=") :].split(b"\n", 1)[0]
    try:
        sizes = [int(size) for size in sizes_line.split()]
    except ValueError:
        raise ModelLoadError(f"{source} has a malformed tree_sizes line") from None
    start = first_tree + 1 if first_tree >= 0 else trees_end + 1
    offset = start
    for index, size in enumerate(sizes):
        if size <= 0 or not text.startswith(b"Tree=", offset) or offset + size > trees_end + 1:
            raise ModelLoadError(
                f"{source} is damaged: tree {index} is not where its header (tree_sizes) says it is "
                "(truncated or edited by hand?)"
            )
        offset += size
    if offset != trees_end + 1:
        raise ModelLoadError(
            f"{source} is damaged: its header declares {len(sizes)} trees over {offset - start} bytes "
            f"but the trees take {trees_end + 1 - start} bytes"
        )


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


def _confine(path: Path, root: Path) -> None:
    """Refuse a file that resolves (through symbolic links) outside ``root``."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop (Python 3.11)
        raise ModelLoadError(f"{path.name} cannot be resolved ({exc})") from None
    if resolved != root and root not in resolved.parents:
        raise ModelLoadError(
            f"{path.relative_to(path.parent)} points outside the models directory {root}; "
            "every file of a model must be inside it"
        )


def find_model_file(model_dir: Path, root: Path | None = None) -> tuple[Path, Path | None]:
    """(model file, metadata file or None); raises ModelLoadError saying what the directory holds.

    With ``root`` (multi-model mode), every file considered must resolve inside ``root``:
    a model directory is caller-named, and a symbolic link in it must not make us read
    (or serve) a file from elsewhere on the system.
    """
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist; train first or mount a model there")
    confined = root.resolve() if root is not None else None
    metadata = model_dir / METADATA_FILE
    ours = model_dir / MODEL_FILE
    if ours.is_file() and metadata.is_file():
        if confined is not None:
            _confine(ours, confined)
            _confine(metadata, confined)
        return ours, metadata
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if not any(part.startswith(".") for part in p.relative_to(model_dir).parts) and (p.is_file() or p.is_symlink())
    )
    if confined is not None:
        for path in files:
            _confine(path, confined)
    files = [p for p in files if p.is_file()]
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

    def validate(self, batch: Batch, max_values: int) -> np.ndarray:
        """The batch as a C-contiguous float64 matrix in the model's feature order, or a 400 that says why.

        ``max_values`` bounds the matrix built for named input (records may omit features, so
        a small body can ask for rows x features far beyond its size): one value per byte
        of the payload limit, which every positional body stays within.
        """
        if batch.columns is not None:
            return self._by_name(batch, max_values)
        assert batch.values is not None
        width = batch.values.shape[1]
        if width != self.num_features:
            hint = " — did you include the label?" if width == self.num_features + 1 else ""
            raise BadRequest(
                f"expected {self.num_features} features, got {width}{hint}",
                expected=self.num_features,
                got=width,
            )
        return np.ascontiguousarray(batch.values, dtype=np.float64)

    def _by_name(self, batch: Batch, max_values: int) -> np.ndarray:
        """Named input (records, or a matrix with column names) in the model's feature order:
        names checked first, then the size, and only then the matrix allocated."""
        assert batch.columns is not None
        positions = {name: index for index, name in enumerate(self.feature_names)}
        unknown = [name for name in batch.columns if name not in positions]
        if unknown:
            hints = [(name, did_you_mean(name, self.feature_names)) for name in unknown[:10]]
            shown = ", ".join(f"{name!r} (did you mean {hint!r}?)" if hint else repr(name) for name, hint in hints)
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            names = ", ".join(self.feature_names[:50]) + (", ..." if self.num_features > 50 else "")
            raise BadRequest(
                f"unknown feature(s) {shown}{more}; the model's features are {names}",
                unknown=unknown[:10],
            )
        if batch.rows * self.num_features > max_values:
            raise PayloadTooLarge(
                f"{batch.rows} records x {self.num_features} features is more than the {max_values} values "
                "one request may expand to; send fewer records per request",
                rows=batch.rows,
            )
        values = np.full((batch.rows, self.num_features), np.nan)
        if batch.records is None:
            assert batch.values is not None
            values[:, [positions[name] for name in batch.columns]] = batch.values
            return values
        for row, record in enumerate(batch.records):
            for name, value in record.items():
                if value is not None:
                    values[row, positions[name]] = value
        return values

    def predict(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.predictor.predict(values), dtype=np.float64)


def read_metadata(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, not {type(document).__name__}")
    return document


def load_model(model_dir: Path, threads: int, compiled_object: Path | None = None, root: Path | None = None) -> LoadedModel:
    """Load the model in ``model_dir``; use the lleaves-compiled object when one is given.

    ``root``: every file read must resolve inside it (see :func:`find_model_file`)."""
    import lightgbm  # imported here: the serve supervisor must not initialise OpenMP before forking

    model_file, metadata_file = find_model_file(model_dir, root)
    metadata = read_metadata(metadata_file)
    text = model_file.read_bytes()
    check_model_text(text, model_file)
    try:
        booster = lightgbm.Booster(model_str=text.decode("utf-8", "replace"))
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
