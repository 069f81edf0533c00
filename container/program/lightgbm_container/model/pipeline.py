"""A scikit-learn Pipeline ending in a LightGBM estimator, served: its steps in Python, then the trees.

Requests name the Pipeline's *input* columns (``feature_names_in_``): CSV rows positional in
that order, JSON records by name (misspellings answered with the name they resemble). Each
input column is text or a number, as the fitted first step says (an encoder fitted on
strings, an imputer of strings: text; anything else: numbers), so a ``ColumnTransformer``
with a ``OneHotEncoder`` over a text column takes ``"red"``, and a number sent for a text
column is its text (``3`` is ``"3"``). The steps' output goes to the final estimator's trees
(:class:`.loaded.LoadedModel`), compiled like any model's; every output kind is answered by
them, except ``contributions`` and ``leaf`` when a step changes the features (they would be
per transformed column, not per input column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadRequest, PayloadTooLarge
from ..missing_values import is_missing_csv_field
from . import outputs
from .batch import Batch
from .categories import text_key
from .loaded import LoadedModel, Predictor, check_names, check_width

#: Output kinds that describe the trees' own input: not the Pipeline's when a step changes it.
PER_FEATURE_KINDS = ("contributions", "leaf")


class PipelineModel:
    """The Pipeline's steps before the estimator (``preprocess``), then the estimator's trees (``trees``)."""

    response_style: str | None = None  # answers in the standard layouts (the built-in algorithm has no Pipelines)

    def __init__(self, preprocess: Any, trees: LoadedModel, input_names: tuple[str, ...], what: str) -> None:
        self.preprocess = preprocess
        self.trees = trees
        self.feature_names = input_names
        self.what = what
        self.text_columns = text_columns(preprocess, input_names)
        if _keeps_features(preprocess, input_names):  # an imputer, a scaler: per-feature kinds name the inputs
            self.unavailable: dict[str, str] = {}
            trees.feature_names = input_names
        else:
            self.unavailable = dict.fromkeys(
                PER_FEATURE_KINDS, "its Pipeline's steps change the features, so they would not be per input column"
            )

    # The trees' side, as the built-in handler, the compile switch and the stores see a model.
    @property
    def kind(self) -> str:
        return self.trees.kind

    @property
    def objective(self) -> str:
        return self.trees.objective

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.trees.classes

    @property
    def predictor(self) -> Predictor:
        return self.trees.predictor

    @predictor.setter
    def predictor(self, predictor: Predictor) -> None:
        self.trees.predictor = predictor

    @property
    def model_file(self) -> Path:
        return self.trees.model_file

    @model_file.setter
    def model_file(self, path: Path) -> None:
        self.trees.model_file = path

    @property
    def source_file(self) -> Path:
        return self.trees.source_file

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def describe(self) -> str:
        inputs = ", ".join(self.feature_names[:8]) + (", ..." if self.num_features > 8 else "")
        text = f" (text: {', '.join(sorted(self.text_columns)[:8])})" if self.text_columns else ""
        return f"{self.what}: inputs {inputs}{text}; trees {self.trees.describe()}"

    def warm_up(self) -> None:
        self.trees.warm_up()

    def validate(self, batch: Batch, max_values: int) -> np.ndarray:
        """The rows through the Pipeline's steps: the matrix the trees predict on, or a 400 that says why."""
        frame = self._frame(batch, max_values)
        try:
            transformed = self.preprocess.transform(frame)
        except (ValueError, TypeError, KeyError) as exc:  # unknown categories, values a step cannot take
            raise BadRequest(f"the model's Pipeline refused the rows: {exc}") from None
        if hasattr(transformed, "toarray"):  # a sparse matrix (OneHotEncoder's default)
            transformed = transformed.toarray()
        return self.trees.validate(Batch(np.asarray(transformed, dtype=np.float64)), max_values)

    def answer(
        self, values: np.ndarray, kinds: tuple[str, ...] | None = None, top_k: int | None = None
    ) -> outputs.Table:
        return self.trees.answer(values, kinds, top_k)

    def predict(self, values: np.ndarray) -> np.ndarray:
        return self.trees.predict(values)

    # ------------------------------------------------------------------ the input frame

    def _frame(self, batch: Batch, max_values: int) -> Any:
        import pandas as pd  # noqa: PLC0415 - loaded already in a worker serving a Pipeline (scikit-learn needs it)

        names = self.feature_names
        if batch.columns is not None:
            check_names(batch.columns, names)
        else:
            check_width(len(batch.cells[0]) if batch.cells is not None else batch.values.shape[1], len(names))  # type: ignore[union-attr]
        if batch.rows * len(names) > max_values:
            raise PayloadTooLarge(
                f"{batch.rows} records x {len(names)} columns is more than the {max_values} values "
                "one request may expand to; send fewer records per request"
            )
        by_position = list(zip(*batch.cells, strict=True)) if batch.cells is not None else None  # one pass, in C
        columns = {name: self._column(batch, by_position, position, name) for position, name in enumerate(names)}
        return pd.DataFrame(columns, columns=list(names))

    def _column(self, batch: Batch, by_position: list[tuple[Any, ...]] | None, position: int, name: str) -> Any:
        """One input column's values: text for a text column, numbers (the codec's rule) otherwise."""
        if batch.records is not None:
            raw: Sequence[Any] = [record.get(name) for record in batch.records]
        elif by_position is not None:
            raw = by_position[position]
        else:
            assert batch.values is not None
            index = batch.columns.index(name) if batch.columns is not None else position
            values = batch.values[:, index] if index >= 0 else np.full(batch.rows, math.nan)
            if name not in self.text_columns:
                return values
            raw = values.tolist()
        if name in self.text_columns:
            return _texts(raw)
        numbers = _plain_numbers(raw)
        if numbers is not None:
            return numbers
        column = position if batch.records is None else name
        return np.array([_number(batch, value, row, column) for row, value in enumerate(raw)], dtype=np.float64)


def _plain_numbers(raw: Sequence[Any]) -> np.ndarray | None:
    """The happy path, in one pass: every value a JSON number, or every one a CSV field that
    ``float()`` reads (the CSV codec's own rule before its missing-value words). None when any
    value needs the codec's rule, which reads missing values and names what is wrong."""
    kinds = set(map(type, raw))
    if not (kinds <= {float, int} or kinds == {bytes}):  # bool is neither: a JSON true is not a number
        return None
    try:
        return np.fromiter(map(float, raw), dtype=np.float64, count=len(raw))
    except ValueError:
        return None


def _texts(raw: Sequence[Any]) -> list[Any]:
    """A text column's values; each distinct value is read once (a column holds few categories)."""
    try:
        distinct = {value: _text(value) for value in set(raw)}
    except TypeError:  # an unhashable value (a list in a JSON record): one by one
        return [_text(value) for value in raw]
    return [distinct[value] for value in raw]


def _text(value: Any) -> Any:
    """A text column's value as the Pipeline's encoders were fitted on it: a string, or NaN
    for a missing one (null, NaN, or a CSV missing-value word such as an empty field)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    if isinstance(value, bytes):
        return np.nan if is_missing_csv_field(value) else value.decode("utf-8", "replace")
    return value if isinstance(value, str) else text_key(value)


def _number(batch: Batch, value: Any, row: int, column: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    return batch.number(value, row, column)


# --------------------------------------------------------------------------- what the fitted steps say


def text_columns(preprocess: Any, input_names: tuple[str, ...]) -> set[str]:
    """The input columns the Pipeline's first step was fitted on as text."""
    steps = getattr(preprocess, "steps", None)
    first = steps[0][1] if steps else preprocess
    return _text_columns_of(first, list(input_names))


def _text_columns_of(step: Any, columns: list[str]) -> set[str]:
    inner_steps = getattr(step, "steps", None)
    if inner_steps:  # a nested Pipeline: its first step sees these columns
        return _text_columns_of(inner_steps[0][1], columns)
    indices = getattr(step, "_transformer_to_input_indices", None)
    if indices is not None and hasattr(step, "transformers_"):  # a fitted ColumnTransformer
        found: set[str] = set()
        for name, transformer, _ in step.transformers_:
            if isinstance(transformer, str):  # "drop" or "passthrough"
                continue
            found |= _text_columns_of(transformer, [columns[i] for i in indices.get(name, [])])
        return found
    fitted = getattr(step, "categories_", None)
    if fitted is None:
        statistics = getattr(step, "statistics_", None)  # a SimpleImputer: its fill values per column
        fitted = [[value] for value in statistics] if statistics is not None and statistics.dtype == object else None
    if fitted is None:
        return set()
    return {column for column, values in zip(columns, fitted, strict=False) if any(isinstance(v, str) for v in values)}


def _keeps_features(preprocess: Any, input_names: tuple[str, ...]) -> bool:
    """Whether the steps' output columns are the input columns, one for one (an imputer, a scaler)."""
    try:
        return tuple(str(name) for name in preprocess.get_feature_names_out()) == input_names
    except (AttributeError, ValueError, TypeError):
        return False
