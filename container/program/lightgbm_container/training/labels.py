"""Training labels as LightGBM wants them: numbers for regression, 0..K-1 for classification
(the original values, text included, kept as the model's ``classes``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import TrainingError
from .channels import Table, not_numbers

log = logging.getLogger("train")


@dataclass
class Labels:
    """Training labels as LightGBM wants them, plus the original class values for classification."""

    values: np.ndarray
    classes: list[Any] | None  # the original values (numbers or text), in code order


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def text_label_error(labels: np.ndarray, table: Table) -> TrainingError:
    import pandas as pd  # noqa: PLC0415 - pandas only to find a bad label

    row = int(not_numbers(pd.Series(labels))[0])
    source, line = table.locate(row)
    return TrainingError(
        f"{source.display} {source.unit} {line}, column {table.label_index + 1} (the label): "
        f"{labels[row]!r} is not a number; "
        "a regression label must be numeric (text labels are for classification objectives)"
    )


def encode_labels(kind: str, labels: np.ndarray, params: dict[str, Any], table: Table | None = None) -> Labels:
    """Classification labels -> 0..K-1 (the original values, text included, are kept as ``classes``)."""
    if kind == "regression":
        if labels.dtype == object:
            assert table is not None
            raise text_label_error(labels, table)
        return Labels(labels, None)
    if labels.dtype == object:  # text labels: every label is a class name, numbers included ("1" and "yes")
        labels = np.array([str(label) for label in labels], dtype=object)
    classes = np.unique(labels)
    if kind == "binary":
        if len(classes) > 2:
            raise TrainingError(
                f"objective {params.get('objective')!r} is binary but the label has {len(classes)} distinct values "
                f"({', '.join(map(str, classes[:10].tolist()))}); use objective=multiclass"
            )
        if labels.dtype != object and np.isin(classes, (0.0, 1.0)).all():
            return Labels(labels, [0, 1])
    if kind == "multiclass":
        declared = params.get("num_class")
        natural = labels.dtype != object and np.array_equal(classes, np.arange(len(classes)))
        if declared is None:
            params["num_class"] = len(classes)
            log.info("num_class not set: using the %d distinct labels", len(classes))
        elif natural and classes.max() < declared:
            return Labels(labels, list(range(int(declared))))
        elif len(classes) > int(declared):
            raise TrainingError(f"num_class={declared} but the label has {len(classes)} distinct values")
    encoded = np.searchsorted(classes, labels).astype(np.float64)
    return Labels(encoded, [c if isinstance(c, str) else _plain_number(c) for c in classes])


def _label_key(value: Any) -> Any:
    return value if isinstance(value, str) else float(value)


def encode_with(classes: list[Any] | None, labels: np.ndarray, channel: str) -> np.ndarray:
    if classes is None:
        return labels
    text = any(isinstance(c, str) for c in classes)
    keys = [str(v) for v in labels] if text else labels
    lookup = {_label_key(c): i for i, c in enumerate(classes)}
    try:
        unknown = sorted({_label_key(v) for v in set(keys)} - set(lookup), key=str)
    except (TypeError, ValueError):
        raise TrainingError(f"channel {channel!r} has text labels but the train channel's labels are numbers") from None
    if unknown:
        raise TrainingError(
            f"channel {channel!r} has label value(s) {unknown[:10]} that the train channel does not have"
        )
    return np.array([lookup[_label_key(v)] for v in keys], dtype=np.float64)
