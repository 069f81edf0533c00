"""``application/json``: rows, one row, records keyed by feature name, or any of those under
``{"instances": ...}``; answers ``{"predictions": [...]}``.

Values must be numbers (``null`` is a missing value); strings wait for the model, which may
have categories for them; every error names the row and column. The row and record rules are
shared with JSON Lines (:mod:`.jsonlines`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import orjson

from ..errors import BadRequest, EmptyBody
from ..model.batch import Batch
from ..model.outputs import Table
from .codec import Codec


def _json_error(exc: orjson.JSONDecodeError, what: str) -> BadRequest:
    return BadRequest(f"{what} is not valid JSON: {exc}")


#: Python types a JSON feature value may have: numbers, and null for a missing value.
_NUMBER_TYPES = frozenset((int, float, type(None)))


def _numeric_matrix(rows: Sequence[Any], may_hold_booleans: bool) -> np.ndarray | None:
    """These rows as a float64 matrix when every value is a number or null (null = NaN), else None.

    numpy turns ``"1.5"`` and ``true`` into numbers without complaint, so it cannot be the
    check. Letting numpy infer the dtype catches strings (a text dtype) and nulls (object)
    at C speed, and an inferred numeric matrix is the answer itself (one pass over the
    Python lists). Booleans mixed with numbers become numbers there too, but they can only
    come from ``true``/``false`` literals, so the per-value check runs only when the body
    holds one (or a null).
    """
    try:
        inferred = np.array(rows)
    except (ValueError, TypeError):
        return None
    if inferred.ndim != 2 or inferred.dtype.kind not in "iufO":
        return None
    if inferred.dtype.kind != "O" and not may_hold_booleans:
        return inferred.astype(np.float64, copy=False)
    if not {type(value) for row in rows for value in row} <= _NUMBER_TYPES:
        return None
    return inferred.astype(np.float64, copy=False) if inferred.dtype.kind != "O" else np.array(rows, dtype=np.float64)


def _json_number(value: Any, row: int, column: Any, label: str, first: int, base: int) -> float:
    """The JSON rule for a value that must be a number (null = missing)."""
    _check_number(value, f"{label} {row + first}, column {column}", row=row + first - base, column=column)
    return math.nan if value is None else float(value)


def rows_to_batch(
    rows: Sequence[Any],
    label: str,
    may_hold_booleans: bool = True,
    first: int = 0,
    base: int | None = None,
    width: int | None = None,
) -> Batch:
    """Lists of numbers (null = missing) to a 2-D float array; errors name the row and column.

    Rows that hold strings (category values, or mistakes) go to the model as text
    (:attr:`Batch.cells`) with this codec's number rule.
    ``first``: the number the first row is shown as (0 for JSON rows, 1 for JSON Lines lines);
    for a later piece of a body (JSON Lines read in pieces), ``base`` is the body's first
    number and ``width`` its first row's length, so errors read as for the whole body."""
    base = first if base is None else base
    matrix = _numeric_matrix(rows, may_hold_booleans)
    if matrix is not None and (width is None or matrix.shape[1] == width):
        return Batch(matrix)
    if width is None:
        width = len(rows[0]) if isinstance(rows[0], list) else None
    has_text = False
    for index, row in enumerate(rows):
        number = index + first
        if not isinstance(row, list):
            raise BadRequest(f"{label} {number} is {type(row).__name__}, expected a list of numbers", row=number - base)
        if len(row) != width:
            raise BadRequest(
                f"{label} {number} has {len(row)} values but {label} {base} has {width}; "
                "every row must have the same number of features",
                row=number - base,
            )
        for column, value in enumerate(row):
            if type(value) is str:
                has_text = True
            else:
                _check_number(value, f"{label} {number}, column {column}", row=number - base, column=column)
    if has_text:
        return Batch(cells=rows, number=partial(_json_number, label=label, first=first, base=base))
    raise BadRequest(f"{label}s must be lists of numbers")


def _check_number(value: Any, where: str, **details: Any) -> None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return
    raise BadRequest(f"{where}: {value!r} is not a number (use null for a missing value)", **details)


def records_to_batch(records: Sequence[Any], label: str, first: int = 0, base: int | None = None) -> Batch:
    """Records keyed by feature name: values type-checked here, the matrix built by the model
    (:meth:`LoadedModel.validate`) once it has checked the keys. ``columns`` is the union of
    keys, in first-seen order. ``first``/``base``: as for :func:`rows_to_batch`."""
    base = first if base is None else base
    columns: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(
                f"{label} {index + first} is {type(record).__name__}; do not mix records and lists",
                row=index + first - base,
            )
        for key, value in record.items():
            columns[key] = None
            if type(value) not in _TEXT_OR_NUMBER:  # text waits for the model: it may be a category
                _check_number(value, f"{label} {index + first}, feature {key!r}", row=index + first - base, feature=key)
    return Batch(
        columns=tuple(columns), records=records, number=partial(_record_number, label=label, first=first, base=base)
    )


_TEXT_OR_NUMBER = _NUMBER_TYPES | {str}


def _record_number(value: Any, row: int, feature: Any, label: str, first: int, base: int) -> float:
    _check_number(value, f"{label} {row + first}, feature {feature!r}", row=row + first - base, feature=feature)
    return math.nan if value is None else float(value)


def may_hold_booleans(body: bytes) -> bool:
    return b"true" in body or b"false" in body


def _instances_to_batch(instances: Any, label: str, booleans: bool) -> Batch:
    if not isinstance(instances, list) or not instances:
        raise EmptyBody(f"no {label}s to predict: send at least one")
    first = instances[0]
    if isinstance(first, dict):
        if "features" in first and all(isinstance(i, dict) and set(i) == {"features"} for i in instances):
            return rows_to_batch([i["features"] for i in instances], label, booleans)
        return records_to_batch(instances, label)
    if isinstance(first, list):
        return rows_to_batch(instances, label, booleans)
    # a single flat row: [1.0, 2.0, ...]
    return rows_to_batch([instances], label, booleans)


def decode(body: bytes) -> Batch:
    """Accepted shapes (see README): a list of rows, one flat row, a list of records keyed by
    feature name, one record, or any of those under ``{"instances": ...}``; SageMaker's
    ``{"instances": [{"features": [...]}]}`` too."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _json_error(exc, "the body") from None
    booleans = may_hold_booleans(body)
    if isinstance(document, dict):
        if "instances" in document:
            return _instances_to_batch(document["instances"], "instance", booleans)
        if "features" in document and len(document) == 1:
            return rows_to_batch([document["features"]], "row", booleans)
        return records_to_batch([document], "record")
    return _instances_to_batch(document, "row", booleans)


def encode(table: Table) -> bytes:
    """``{"predictions": [...]}``: the default answer's numbers (lists for multiclass), or one
    object per record keyed by kind (NaN -> null)."""
    if table.bare:
        return orjson.dumps({"predictions": table.columns[0].values}, option=orjson.OPT_SERIALIZE_NUMPY)
    return orjson.dumps({"predictions": table.records()})


CODEC = Codec("application/json", decode, encode, rank=1)
