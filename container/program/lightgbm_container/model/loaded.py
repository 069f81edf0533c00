"""A loaded model: the LightGBM Booster, what training recorded about it, and how to predict."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..compilation.artifact import LOAD_OPTIONS
from ..errors import BadRequest, PayloadTooLarge, did_you_mean
from . import outputs
from .batch import Batch
from .categories import Categories, categorical_positions, categories_for
from .files import ModelLoadError, check_model_text, find_model_file, read_metadata, read_objective

log = logging.getLogger(__name__)


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
    """The same trees compiled to native code by lleaves (checked against LightGBM by the compile job)."""

    compiled: Any
    threads: int
    object_file: Path | None = None  # which compile it came from: /stats tells a quick one from the final one
    name: str = "lleaves"

    def predict(self, values: np.ndarray) -> np.ndarray:
        threads = self.threads if values.shape[0] >= 1024 else 1
        return self.compiled.predict(values, n_jobs=threads)


def output_kind(objective: str) -> str:
    """regression (the value), binary (P(class 1)) or multiclass (class probabilities)."""
    if objective in ("binary", "cross_entropy", "xentropy", "cross_entropy_lambda", "xentlambda"):
        return "binary"
    if objective in ("multiclass", "softmax", "multiclassova", "multiclass_ova", "ova", "ovr"):
        return "multiclass"
    return "regression"


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
    threads: int = 1  # for LightGBM's own predictions (raw scores, contributions, leaves)
    categories: Categories = field(default_factory=lambda: Categories(()))

    @classmethod
    def from_booster(cls, booster: Any, threads: int) -> LoadedModel:
        """A Booster that user code loaded itself (its ``model_fn``), served by the built-in steps."""
        objective = str(booster.params.get("objective", "regression")).split(" ")[0]
        feature_names = tuple(booster.feature_name())
        categorical = [int(i) for i in booster.params.get("categorical_feature") or [] if str(i).isdigit()]
        return cls(
            model_file=Path("<model_fn>"),
            booster=booster,
            predictor=BoosterPredictor(booster, threads),
            objective=objective,
            kind=output_kind(objective),
            feature_names=feature_names,
            threads=threads,
            categories=categories_for(feature_names, None, getattr(booster, "pandas_categorical", None), categorical),
        )

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def class_labels(self) -> tuple[Any, ...]:
        """The original class labels in code order (strings included); 0..K-1 when training recorded none."""
        if self.classes:
            return self.classes
        return (0, 1) if self.kind == "binary" else tuple(range(self.booster.num_model_per_iteration()))

    def describe(self) -> str:
        names = ", ".join(self.feature_names[:8]) + (", ..." if self.num_features > 8 else "")
        categorical = f" categorical=[{self.categories.describe()}]" if self.categories else ""
        return (
            f"{self.model_file} objective={self.objective} output={self.kind} "
            f"trees={self.booster.num_trees()} features={self.num_features} [{names}]{categorical} "
            f"predictor={self.predictor.name}"
        )

    def answer(
        self, values: np.ndarray, kinds: tuple[str, ...] | None = None, top_k: int | None = None
    ) -> outputs.Table:
        """The requested output kinds for ``values`` (a matrix from :meth:`validate`); no kinds: the default answer."""
        if kinds is None:
            return outputs.Table.default(self.predict(values))
        return outputs.compute(self, values, kinds, top_k)

    def validate(self, batch: Batch, max_values: int) -> np.ndarray:
        """The batch as a C-contiguous float64 matrix in the model's feature order, or a 400 that says why.

        ``max_values`` bounds the matrix built for named input (records may omit features, so
        a small body can ask for rows x features far beyond its size): one value per byte
        of the payload limit, which every positional body stays within.
        """
        if batch.columns is not None:
            return self._by_name(batch, max_values)
        if batch.cells is not None:
            self._check_width(len(batch.cells[0]))
            return self._from_cells(batch)
        assert batch.values is not None
        self._check_width(batch.values.shape[1])
        if self.categories:
            return self._encode_categories(np.array(batch.values, dtype=np.float64, order="C"))
        return np.ascontiguousarray(batch.values, dtype=np.float64)

    def _check_width(self, width: int) -> None:
        if width != self.num_features:
            hint = " — did you include the label?" if width == self.num_features + 1 else ""
            raise BadRequest(
                f"expected {self.num_features} features, got {width}{hint}",
                expected=self.num_features,
                got=width,
            )

    def _encode_categories(self, values: np.ndarray) -> np.ndarray:
        """Numbers sent for mapped categorical features are categories too (``5`` is category 5)."""
        for position, feature in self.categories.by_position.items():
            values[:, position] = self.categories.encode_column(feature, values[:, position].tolist())
        return values

    def _from_cells(self, batch: Batch) -> np.ndarray:
        """Positional rows holding text: category strings become codes, every other value must
        be a number by the codec's rule (whose 400 names the line and column, as before)."""
        return batch.cells_to_matrix(
            {
                position: partial(self.categories.encode_value, feature)
                for position, feature in self.categories.by_position.items()
            }
        )

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
            return self._encode_categories(values) if self.categories else values
        mapped = self.categories.by_position
        for row, record in enumerate(batch.records):
            for name, value in record.items():
                position = positions[name]
                if position in mapped:
                    values[row, position] = self.categories.encode_value(mapped[position], value)
                elif value is not None:
                    values[row, position] = value if type(value) is not str else batch.number(value, row, name)
        return values

    def predict(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.predictor.predict(values), dtype=np.float64)


def load_model(
    model_dir: Path, threads: int, compiled_object: Path | None = None, root: Path | None = None
) -> LoadedModel:
    """Load the model in ``model_dir``; use the lleaves-compiled object when one is given.

    ``root``: every file read must resolve inside it (see :func:`find_model_file`)."""
    import lightgbm  # noqa: PLC0415 - imported here: the serve supervisor must not initialise OpenMP before forking

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
        predictor = load_compiled(model_file, compiled_object, threads) or predictor
    classes = metadata.get("classes")
    categories = categories_for(
        feature_names,
        metadata.get("categories"),
        getattr(booster, "pandas_categorical", None),
        categorical_positions(text),
    )
    return LoadedModel(
        model_file=model_file,
        booster=booster,
        predictor=predictor,
        objective=objective,
        kind=output_kind(objective),
        feature_names=feature_names,
        classes=tuple(classes) if classes else None,
        metadata=metadata,
        threads=threads,
        categories=categories,
    )


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
