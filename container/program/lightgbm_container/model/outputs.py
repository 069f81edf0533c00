"""Output kinds: the answers a request can ask a model for, besides the default value.

This module is the one home of every kind: which models it fits, how it is computed and
with which predictor, and its shape per record. Codecs only lay the shapes out (JSON
object, JSON Lines, CSV columns, NPY fields); choosing kinds from a request lives in
:mod:`..serving.output_selection`. A new kind is one :class:`OutputKind` in :data:`KINDS`.

Predictors per kind: values and probabilities come from the model's predictor (the
compiled trees when ``serve`` compiled them); raw scores, contributions and leaf indices
from LightGBM, the only one that computes them. :class:`Answers` runs each predictor at
most once per request, however many kinds share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..errors import BadRequest, did_you_mean

if TYPE_CHECKING:
    from .loaded import LoadedModel

DEFAULT_TOP_K = 3
#: The bias term's key in a contributions object (SHAP's expected value).
BIAS = "bias"


# --------------------------------------------------------------------------- one kind's answer


@dataclass(frozen=True)
class Column:
    """One kind's answer for every record of a request.

    ``values`` has one entry per record: a scalar (shape ``(n,)``), a list (``(n, w)``), or
    for ``top_k`` pairs. Every layout a codec needs is derived here, so the codecs stay
    ignorant of kinds.
    """

    kind: str
    values: np.ndarray
    #: JSON rendering: "plain" (numbers or labels as they are), "contributions", "top_k".
    style: str = "plain"
    feature_names: tuple[str, ...] = ()
    probabilities: np.ndarray | None = None  # top_k: the probabilities beside the labels in ``values``

    def json_values(self) -> list[Any]:
        """One JSON value per record."""
        if self.style == "contributions":
            return [_contribution_objects(row, self.feature_names) for row in self.values]
        if self.style == "top_k":
            assert self.probabilities is not None
            return [
                [{"label": label, "probability": probability} for label, probability in zip(labels, probabilities)]
                for labels, probabilities in zip(self.values.tolist(), self.probabilities.tolist())
            ]
        return self.values.tolist()

    def cells(self) -> list[list[Any]]:
        """The CSV columns of every record (documented order: see README)."""
        rows = len(self.values)
        if self.style == "top_k":
            assert self.probabilities is not None
            interleaved = np.empty((rows, self.values.shape[1] * 2), dtype=object)
            interleaved[:, 0::2] = self.values
            interleaved[:, 1::2] = self.probabilities
            return interleaved.tolist()
        return self.values.reshape(rows, -1).tolist()

    def npy_fields(self) -> list[tuple[str, np.ndarray]]:
        """Named arrays for a structured .npy answer (labels as text or numbers, never objects)."""
        if self.style == "top_k":
            assert self.probabilities is not None
            return [(f"{self.kind}_labels", _plain_array(self.values)), (f"{self.kind}_probabilities", self.probabilities)]
        if self.style == "contributions":
            return [(self.kind, self.values.reshape(len(self.values), -1))]
        return [(self.kind, _plain_array(self.values))]


def _plain_array(values: np.ndarray) -> np.ndarray:
    return np.asarray(values.tolist()) if values.dtype == object else values


def _contribution_objects(row: np.ndarray, names: Sequence[str]) -> Any:
    """``{"bias": b, "features": {name: value}}``; a list of those, one per class, for multiclass."""
    def one(values: list[float]) -> dict[str, Any]:
        return {BIAS: values[-1], "features": dict(zip(names, values[:-1]))}

    if row.ndim == 1:
        return one(row.tolist())
    return [one(per_class) for per_class in row.tolist()]


# --------------------------------------------------------------------------- shared computations


class Answers:
    """Predictions for one validated matrix, each predictor run at most once."""

    def __init__(self, model: LoadedModel, values: np.ndarray, top_k: int | None = None) -> None:
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
    return Column("contributions", values, style="contributions", feature_names=model.feature_names)


def _leaf(answers: Answers) -> Column:
    return Column("leaf", answers.lightgbm(pred_leaf=True).astype(np.int64))


def _top_k(answers: Answers) -> Column:
    """The k most probable classes, most probable first (ties keep class order)."""
    probabilities = answers.probabilities
    k = min(answers.top_k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return Column(
        "top_k",
        answers.classes[order],
        style="top_k",
        probabilities=np.take_along_axis(probabilities, order, axis=1),
    )


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

#: What ``Accept: application/json;verbose`` (SageMaker's built-in LightGBM) asks for, per model kind.
VERBOSE = {
    "binary": ("probabilities", "predicted_label", "labels"),
    "multiclass": ("probabilities", "predicted_label", "labels"),
    "regression": ("predicted_score",),
}


def valid_kinds(model_kind: str) -> tuple[str, ...]:
    return tuple(name for name, kind in KINDS.items() if model_kind in kind.families)


def check_kinds(requested: Sequence[str], model_kind: str, source: str) -> tuple[str, ...]:
    """The requested kinds, duplicates dropped, or a 400 that lists what this model answers."""
    valid = valid_kinds(model_kind)
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
        if name not in valid:
            raise BadRequest(
                f"output kind {name!r} (from {source}) does not fit a {model_kind} model; "
                f"it answers {', '.join(valid)}",
                valid=list(valid),
            )
        chosen.append(name)
    return tuple(chosen)


def compute(model: LoadedModel, values: np.ndarray, kinds: Sequence[str], top_k: int | None = None) -> list[Column]:
    """Every requested kind for every row of ``values`` (kinds already checked)."""
    answers = Answers(model, values, top_k)
    return [KINDS[name].compute(answers) for name in kinds]
