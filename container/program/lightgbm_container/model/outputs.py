"""Output kinds: the answers a request can ask a model for, besides the default value.

This module is the one home of every kind: which models it fits, how it is computed and
with which predictor, and its shape per record. A request's answer is a :class:`Table` of
:class:`Column` s, one per kind; codecs lay a table out (JSON objects, JSON Lines, CSV
columns, NPY fields) without knowing any kind, because each column renders itself. A new
kind is one :class:`OutputKind` in :data:`KINDS`; a kind with a shape of its own (like
``contributions`` or ``top_k``) is one :class:`Column` subclass beside it. Choosing kinds
from a request lives in :mod:`..builtin.output_selection`.

The default answer (a request that chose no kind) is the kind :data:`DEFAULT_KIND` in a
*bare* table: one unnamed column, laid out as it has been since the first release
(``{"predictions": [21.3, ...]}``, one value per CSV line, a plain NPY array).

Predictors per kind: values and probabilities come from the model's predictor (the
compiled trees when ``serve`` compiled them); raw scores, contributions and leaf indices
from LightGBM, the only one that computes them. :class:`Answers` runs each predictor at
most once per request, however many kinds share it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from ..errors import BadRequest, did_you_mean

DEFAULT_TOP_K = 3
#: The bias term's key in a contributions object (SHAP's expected value).
BIAS = "bias"


class Scorer(Protocol):
    """What the kinds need of a model (:class:`..loaded.LoadedModel` is one)."""

    kind: str  # "regression", "binary" or "multiclass"
    booster: Any  # LightGBM's, for the kinds only it computes
    threads: int
    feature_names: tuple[str, ...]

    @property
    def num_features(self) -> int: ...

    @property
    def class_labels(self) -> tuple[Any, ...]: ...

    def predict(self, values: np.ndarray) -> np.ndarray: ...


# --------------------------------------------------------------------------- one kind's answer


@dataclass(slots=True)  # made per request: a frozen __init__ costs more
class Column:
    """One kind's answer for every record of a request: ``values`` has one entry per record, a
    scalar (shape ``(n,)``) or a list (``(n, w)``). Each layout a codec needs is a method, so a
    kind with another shape overrides them (:class:`ContributionsColumn`, :class:`TopKColumn`)."""

    kind: str
    values: np.ndarray

    def json_values(self) -> list[Any]:
        """One JSON value per record."""
        return self.values.tolist()

    def cells(self) -> list[list[Any]]:
        """The CSV columns of every record (documented order: see README)."""
        return self.values.reshape(len(self.values), -1).tolist()

    def npy_fields(self) -> list[tuple[str, np.ndarray]]:
        """Named arrays for a structured .npy answer (labels as text or numbers, never objects)."""
        return [(self.kind, _plain_array(self.values))]

    def followed_by(self, later: Sequence[Column]) -> Column:
        """This kind's answers for the records of several pieces of one body, in order."""
        return dataclasses.replace(self, values=np.concatenate([self.values, *(column.values for column in later)]))


@dataclass(slots=True)
class ContributionsColumn(Column):
    """SHAP values per record: ``{"bias": b, "features": {name: value}}`` (a list of those, one per class)."""

    feature_names: tuple[str, ...] = ()

    def json_values(self) -> list[Any]:
        return [_contribution_objects(row, self.feature_names) for row in self.values]

    def npy_fields(self) -> list[tuple[str, np.ndarray]]:
        return [(self.kind, self.values.reshape(len(self.values), -1))]


@dataclass(slots=True)
class TopKColumn(Column):
    """The k most probable classes per record: labels in ``values``, their probabilities beside them."""

    probabilities: np.ndarray | None = None

    def json_values(self) -> list[Any]:
        assert self.probabilities is not None
        return [
            [
                {"label": label, "probability": probability}
                for label, probability in zip(labels, probabilities, strict=True)
            ]
            for labels, probabilities in zip(self.values.tolist(), self.probabilities.tolist(), strict=True)
        ]

    def cells(self) -> list[list[Any]]:
        """``label, probability`` pairs."""
        assert self.probabilities is not None
        interleaved = np.empty((len(self.values), self.values.shape[1] * 2), dtype=object)
        interleaved[:, 0::2] = self.values
        interleaved[:, 1::2] = self.probabilities
        cells: list[list[Any]] = interleaved.tolist()
        return cells

    def npy_fields(self) -> list[tuple[str, np.ndarray]]:
        assert self.probabilities is not None
        return [(f"{self.kind}_labels", _plain_array(self.values)), (f"{self.kind}_probabilities", self.probabilities)]

    def followed_by(self, later: Sequence[Column]) -> Column:
        assert self.probabilities is not None and all(isinstance(column, TopKColumn) for column in later)
        return dataclasses.replace(
            self,
            values=np.concatenate([self.values, *(column.values for column in later)]),
            probabilities=np.concatenate([self.probabilities, *(column.probabilities for column in later)]),  # type: ignore[attr-defined]
        )


@dataclass(slots=True)  # made per request
class Table:
    """A request's answer: one column per kind, in the order asked for. ``bare``: the default
    answer (a single column, laid out without its kind's name)."""

    columns: tuple[Column, ...]
    bare: bool = False

    @classmethod
    def default(cls, values: np.ndarray) -> Table:
        """The default answer for ``values`` (one value, or one list of class probabilities, per record)."""
        return cls((Column(DEFAULT_KIND, values),), bare=True)

    @classmethod
    def joined(cls, tables: Sequence[Table]) -> Table:
        """One answer for a body answered piece by piece: each kind's column, the pieces in order."""
        if len(tables) == 1:
            return tables[0]
        first, later = tables[0], tables[1:]
        columns = tuple(
            column.followed_by([table.columns[index] for table in later]) for index, column in enumerate(first.columns)
        )
        return cls(columns, first.bare)

    @property
    def rows(self) -> int:
        return len(self.columns[0].values)

    @property
    def kinds(self) -> list[str]:
        return [column.kind for column in self.columns]

    def records(self) -> list[dict[str, Any]]:
        """One object per record, keyed by kind (JSON and JSON Lines)."""
        names = self.kinds
        return [
            dict(zip(names, values, strict=True))
            for values in zip(*(column.json_values() for column in self.columns), strict=True)
        ]


def _plain_array(values: np.ndarray) -> np.ndarray:
    return np.asarray(values.tolist()) if values.dtype == object else values


def _contribution_objects(row: np.ndarray, names: Sequence[str]) -> Any:
    """``{"bias": b, "features": {name: value}}``; a list of those, one per class, for multiclass."""

    def one(values: list[float]) -> dict[str, Any]:
        return {BIAS: values[-1], "features": dict(zip(names, values[:-1], strict=True))}

    if row.ndim == 1:
        return one(row.tolist())
    return [one(per_class) for per_class in row.tolist()]


# --------------------------------------------------------------------------- shared computations


class Answers:
    """Predictions for one validated matrix, each predictor run at most once."""

    def __init__(self, model: Scorer, values: np.ndarray, top_k: int | None = None) -> None:
        self.model = model
        self.values = values
        self.top_k = top_k or DEFAULT_TOP_K

    @cached_property
    def score(self) -> np.ndarray:
        return self.model.predict(self.values)

    @cached_property
    def probabilities(self) -> np.ndarray:
        if self.model.kind == "binary":
            return np.column_stack((1.0 - self.score, self.score))
        return self.score

    @cached_property
    def label_index(self) -> np.ndarray:
        """LightGBM's classifier rule: the most probable class, the lower one on a tie (P = 0.5 -> 0)."""
        return np.argmax(self.probabilities, axis=1)

    @cached_property
    def classes(self) -> np.ndarray:
        return np.array(self.model.class_labels, dtype=object)

    def lightgbm(self, **what: bool) -> np.ndarray:
        return np.asarray(self.model.booster.predict(self.values, num_threads=self.model.threads, **what))


def _predicted_score(answers: Answers) -> Column:
    return Column("predicted_score", answers.score)


def _raw_score(answers: Answers) -> Column:
    return Column("raw_score", answers.lightgbm(raw_score=True).astype(np.float64))


def _probability(answers: Answers) -> Column:
    """Binary: P(positive class). Multiclass: P(predicted class), as SageMaker's XGBoost answers."""
    if answers.model.kind == "binary":
        return Column("probability", answers.score)
    return Column("probability", answers.probabilities.max(axis=1))


def _probabilities(answers: Answers) -> Column:
    return Column("probabilities", answers.probabilities)


def _predicted_label(answers: Answers) -> Column:
    return Column("predicted_label", answers.classes[answers.label_index])


def _labels(answers: Answers) -> Column:
    return Column("labels", np.tile(answers.classes, (len(answers.values), 1)))


def _contributions(answers: Answers) -> Column:
    """SHAP values (LightGBM's ``pred_contrib``): per feature, then the bias; per class for multiclass."""
    model = answers.model
    raw = answers.lightgbm(pred_contrib=True).astype(np.float64)
    width = model.num_features + 1
    values = raw.reshape(len(raw), -1, width) if model.kind == "multiclass" else raw
    return ContributionsColumn("contributions", values, feature_names=model.feature_names)


def _leaf(answers: Answers) -> Column:
    return Column("leaf", answers.lightgbm(pred_leaf=True).astype(np.int64))


def _top_k(answers: Answers) -> Column:
    """The k most probable classes, most probable first (ties keep class order)."""
    probabilities = answers.probabilities
    k = min(answers.top_k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return TopKColumn("top_k", answers.classes[order], probabilities=np.take_along_axis(probabilities, order, axis=1))


# --------------------------------------------------------------------------- the registry

ALL_FAMILIES = frozenset(("regression", "binary", "multiclass"))
CLASSIFICATION = frozenset(("binary", "multiclass"))


@dataclass(frozen=True)
class OutputKind:
    name: str
    families: frozenset[str]  # the model kinds (LoadedModel.kind) it fits
    compute: Callable[[Answers], Column]


KINDS: dict[str, OutputKind] = {
    kind.name: kind
    for kind in (
        OutputKind("predicted_label", CLASSIFICATION, _predicted_label),
        OutputKind("probabilities", CLASSIFICATION, _probabilities),
        OutputKind("probability", CLASSIFICATION, _probability),
        OutputKind("raw_score", ALL_FAMILIES, _raw_score),
        OutputKind("predicted_score", ALL_FAMILIES, _predicted_score),
        OutputKind("labels", CLASSIFICATION, _labels),
        OutputKind("contributions", ALL_FAMILIES, _contributions),
        OutputKind("leaf", ALL_FAMILIES, _leaf),
        OutputKind("top_k", frozenset(("multiclass",)), _top_k),
    )
}
KIND_NAMES = tuple(KINDS)
#: The kind of the default answer: the model's value (regression), P(positive class) (binary) or
#: every class's probability (multiclass).
DEFAULT_KIND = "predicted_score"

#: What ``Accept: application/json;verbose`` (SageMaker's built-in LightGBM) asks for, per model kind.
VERBOSE = {
    "binary": ("probabilities", "predicted_label", "labels"),
    "multiclass": ("probabilities", "predicted_label", "labels"),
    "regression": ("predicted_score",),
}


def valid_kinds(model_kind: str) -> tuple[str, ...]:
    return tuple(name for name, kind in KINDS.items() if model_kind in kind.families)


def check_kinds(
    requested: Sequence[str], model_kind: str, source: str, unavailable: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The requested kinds, duplicates dropped, or a 400 that lists what this model answers.
    ``unavailable``: kinds that fit the model's kind but not this model, and why (a Pipeline's)."""
    unavailable = unavailable or {}
    valid = tuple(kind for kind in valid_kinds(model_kind) if kind not in unavailable)
    chosen: list[str] = []
    for name in requested:
        if name in chosen:
            continue
        if name not in KINDS:
            hint = did_you_mean(name, KIND_NAMES)
            raise BadRequest(
                f"unknown output kind {name!r}{f' (did you mean {hint!r}?)' if hint else ''} in {source}; "
                f"this {model_kind} model answers {', '.join(valid)}",
                valid=list(valid),
            )
        if name in unavailable:
            raise BadRequest(
                f"output kind {name!r} (from {source}) is not available for this model: {unavailable[name]}; "
                f"it answers {', '.join(valid)}",
                valid=list(valid),
            )
        if name not in valid:
            raise BadRequest(
                f"output kind {name!r} (from {source}) does not fit a {model_kind} model; "
                f"it answers {', '.join(valid)}",
                valid=list(valid),
            )
        chosen.append(name)
    return tuple(chosen)


def compute(model: Scorer, values: np.ndarray, kinds: Sequence[str], top_k: int | None = None) -> Table:
    """Every requested kind for every row of ``values`` (kinds already checked)."""
    answers = Answers(model, values, top_k)
    return Table(tuple(KINDS[name].compute(answers) for name in kinds))
