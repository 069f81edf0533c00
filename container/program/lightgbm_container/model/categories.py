"""Category strings to LightGBM's category codes, with the mapping the model was trained with.

LightGBM predicts on category *codes*; the strings behind them live beside the model: in
``metadata.json`` (``categories``, written by our ``train``) or, for a Booster trained on a
pandas DataFrame anywhere else, in the model file's ``pandas_categorical`` line. This
module applies that mapping to request values exactly as LightGBM's own pandas path does
(``Categorical(values, categories).codes``, unseen -> missing), so a request carrying
strings predicts what ``booster.predict(dataframe)`` predicts.

An unseen category is not an error: LightGBM sends it down the "other" branch as a
missing value. Each model counts them per feature and logs the first one per feature once.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _numeric_key(value: Any) -> float | None:
    """A request value as a number (CSV sends text), or None when it is not one."""
    if _is_number(value):
        return float(value)
    if isinstance(value, (bytes, str)):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def text_key(value: Any) -> str:
    """A request value as category text: ``5`` and ``5.0`` and ``"5"`` are the same category."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if _is_number(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return False


@dataclass
class FeatureCategories:
    """One categorical feature's categories, in code order (code = position)."""

    feature: str
    position: int  # the feature's column in the model
    categories: tuple[Any, ...]
    numeric: bool = field(init=False)
    _codes: dict[Any, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.numeric = all(_is_number(c) for c in self.categories)
        if self.numeric:
            self._codes = {float(c): code for code, c in enumerate(self.categories)}
        else:
            self._codes = {text_key(c): code for code, c in enumerate(self.categories)}

    def code(self, value: Any) -> float | None:
        """The code of ``value``; NaN for a missing value; None for a category the model never saw."""
        if is_missing(value):
            return math.nan
        if self.numeric:
            key = _numeric_key(value)
            if key is None:
                return None
            if math.isnan(key):
                return math.nan
            found = self._codes.get(key)
        else:
            found = self._codes.get(text_key(value))
        return None if found is None else float(found)


class Categories:
    """Every mapped categorical feature of one model, and its unseen-category counts."""

    def __init__(self, features: Iterable[FeatureCategories]) -> None:
        self.by_position: dict[int, FeatureCategories] = {f.position: f for f in features}
        self.unseen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.by_position)

    def describe(self) -> str:
        return ", ".join(f"{f.feature} ({len(f.categories)})" for f in self.by_position.values())

    def encode_column(self, feature: FeatureCategories, values: Sequence[Any]) -> np.ndarray:
        """Codes for one column of request values (unseen -> NaN, counted and logged once)."""
        codes = np.empty(len(values), dtype=np.float64)
        unseen = 0
        first_unseen = None
        for row, value in enumerate(values):
            code = feature.code(value)
            if code is None:
                unseen += 1
                if first_unseen is None:
                    first_unseen = value
                code = math.nan
            codes[row] = code
        if unseen:
            self._count_unseen(feature, unseen, first_unseen)
        return codes

    def encode_value(self, feature: FeatureCategories, value: Any) -> float:
        code = feature.code(value)
        if code is None:
            self._count_unseen(feature, 1, value)
            return math.nan
        return code

    def _count_unseen(self, feature: FeatureCategories, count: int, example: Any) -> None:
        with self._lock:
            first = feature.feature not in self.unseen
            self.unseen[feature.feature] += count
        if first:
            shown = example.decode("utf-8", "replace") if isinstance(example, bytes) else example
            log.warning(
                "feature %r: category %r was not seen in training; predicting it as missing, as LightGBM does "
                "(logged once per feature; later ones are only counted)",
                feature.feature,
                shown,
            )


def categorical_positions(model_text: bytes) -> list[int]:
    """Which features the model treats as categorical, from the model text's ``feature_infos=``
    line (categorical features list their category codes with ``:``, numerical ones
    ``[min:max]``), so no tree needs dumping."""
    start = model_text.find(b"\nfeature_infos=")
    if start < 0:
        return []
    end = model_text.find(b"\n", start + 1)
    infos = model_text[start + len(b"\nfeature_infos=") : end if end >= 0 else None].split(b" ")
    return [i for i, info in enumerate(infos) if info != b"none" and not info.startswith(b"[")]


def categories_for(
    feature_names: Sequence[str],
    metadata_categories: dict[str, list[Any]] | None,
    pandas_categorical: list[list[Any]] | None,
    categorical: Sequence[int],
) -> Categories:
    """The model's category mapping: ``metadata.json`` first (our ``train`` names each feature),
    else the model file's ``pandas_categorical``, which LightGBM stores in the order of the
    categorical columns; it is applied when there is one list per categorical feature."""
    if metadata_categories:
        positions = {name: index for index, name in enumerate(feature_names)}
        return Categories(
            FeatureCategories(name, positions[name], tuple(values))
            for name, values in metadata_categories.items()
            if name in positions
        )
    if pandas_categorical:
        if len(pandas_categorical) != len(categorical):
            log.warning(
                "the model file has %d pandas category lists but %d categorical features; "
                "category strings cannot be matched to features, so requests must send category codes",
                len(pandas_categorical),
                len(categorical),
            )
            return Categories(())
        return Categories(
            FeatureCategories(feature_names[position], position, tuple(values))
            for position, values in zip(categorical, pandas_categorical, strict=True)
        )
    return Categories(())
