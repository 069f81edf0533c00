"""A loaded model: the LightGBM Booster, what training recorded about it, and how to predict."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import BadRequest, PayloadTooLarge, did_you_mean
from . import outputs
from .batch import Batch
from .categories import Categories, categorical_positions, categories_for
from .files import ModelLoadError, check_model_text, read_objective

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
    #: The file the model came from, when ``model_file`` (LightGBM text, for the compile) was derived
    #: from it: a pickle (:mod:`.pickles`). None: ``model_file`` itself.
    source: Path | None = None
    #: Output kinds this model cannot answer, and why (a Pipeline's :mod:`.pipeline` sets them).
    unavailable: dict[str, str] = field(default_factory=dict)
    #: The layout its answers take unless LIGHTGBM_RESPONSE_STYLE says otherwise (:mod:`.conventions`); None: standard.
    response_style: str | None = None

    @classmethod
    def from_text(
        cls,
        text: bytes,
        model_file: Path,
        metadata: dict[str, Any],
        threads: int,
        source: Path | None = None,
    ) -> LoadedModel:
        """A model from its LightGBM text (checked first: :func:`.files.check_model_text`) and what
        training recorded about it, predicting with LightGBM (the compiled trees are installed by
        the handler: :mod:`..compilation.predictor`)."""
        import lightgbm  # noqa: PLC0415 - the serve supervisor must not initialise OpenMP before forking

        check_model_text(text, model_file)
        try:
            booster = lightgbm.Booster(model_str=text.decode("utf-8", "replace"))
        except lightgbm.basic.LightGBMError as exc:
            raise ModelLoadError(f"{model_file} is not a valid LightGBM model: {exc}") from None
        feature_names = tuple(metadata.get("feature_names") or booster.feature_name())
        objective = metadata.get("objective") or read_objective(model_file)
        predictor: Predictor = BoosterPredictor(booster, threads)
        classes = metadata.get("classes")
        categories = categories_for(
            feature_names,
            metadata.get("categories"),
            getattr(booster, "pandas_categorical", None),
            categorical_positions(text),
        )
        return cls(
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
            source=source,
        )

    @classmethod
    def from_booster(
        cls,
        booster: Any,
        threads: int,
        model_file: Path | None = None,
        classes: tuple[Any, ...] | None = None,
        source: Path | None = None,
    ) -> LoadedModel:
        """A Booster already in memory: one user code loaded (its ``model_fn``), or one a pickle
        held (``model_file``: its text, derived for the compile; ``classes``: the estimator's)."""
        text = model_file.read_bytes() if model_file is not None else b""
        objective = _objective(text) or str(booster.params.get("objective", "regression")).split(" ")[0]
        feature_names = tuple(booster.feature_name())
        if text:
            categorical = categorical_positions(text)
        else:
            categorical = [int(i) for i in booster.params.get("categorical_feature") or [] if str(i).isdigit()]
        return cls(
            model_file=model_file or Path("<model_fn>"),
            booster=booster,
            predictor=BoosterPredictor(booster, threads),
            objective=objective,
            kind=output_kind(objective),
            feature_names=feature_names,
            classes=classes,
            threads=threads,
            categories=categories_for(feature_names, None, getattr(booster, "pandas_categorical", None), categorical),
            source=source,
        )

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def source_file(self) -> Path:
        """The model's own file in its directory (a pickle's, not the text derived from it)."""
        return self.source or self.model_file

    def warm_up(self) -> None:
        """One throw-away prediction: first-call costs (thread pools, lazy imports) paid now, not by a caller."""
        self.predict(np.zeros((1, self.num_features)))

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
            check_width(len(batch.cells[0]), self.num_features)
            return self._from_cells(batch)
        assert batch.values is not None
        check_width(batch.values.shape[1], self.num_features)
        if self.categories:
            return self._encode_categories(np.array(batch.values, dtype=np.float64, order="C"))
        return np.ascontiguousarray(batch.values, dtype=np.float64)

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
        check_names(batch.columns, self.feature_names)
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


def _objective(text: bytes) -> str | None:
    """The objective a model text's header names (``objective=binary sigmoid:1`` -> ``binary``)."""
    start = text.find(b"\nobjective=", 0, text.find(b"\nTree="))
    if start < 0:
        return None
    line = text[start + len(b"\nobjective=") :].split(b"\n", 1)[0]
    return line.decode("utf-8", "replace").split(" ")[0] or None


def check_width(width: int, expected: int) -> None:
    """Positional rows must have exactly the model's number of features."""
    if width != expected:
        hint = " — did you include the label?" if width == expected + 1 else ""
        raise BadRequest(f"expected {expected} features, got {width}{hint}", expected=expected, got=width)


def check_names(names: Sequence[str], features: Sequence[str]) -> None:
    """Named input must name the model's features only; a misspelling is answered with the name it resembles."""
    known = set(features)
    unknown = [name for name in names if name not in known]
    if unknown:
        hints = [(name, did_you_mean(name, features)) for name in unknown[:10]]
        shown = ", ".join(f"{name!r} (did you mean {hint!r}?)" if hint else repr(name) for name, hint in hints)
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        listed = ", ".join(features[:50]) + (", ..." if len(features) > 50 else "")
        raise BadRequest(f"unknown feature(s) {shown}{more}; the model's features are {listed}", unknown=unknown[:10])
