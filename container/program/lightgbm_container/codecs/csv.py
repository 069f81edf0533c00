"""``text/csv``: one record per line, features only; answers one line per record.

Strict about shape and content (every error names the line and column) but fast on the happy
path: small bodies are parsed with plain ``float()`` (microseconds), large ones with pandas'
C parser; when the fast parser rejects a body the exact parser runs again to say *where* it
is wrong.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import repeat
from typing import Any

import numpy as np

from ..errors import BadRequest
from ..missing_values import PANDAS_MISSING_OPTIONS, is_missing_csv_field
from ..model.batch import Batch
from ..model.outputs import Table
from .codec import Codec
from .text import line_pieces, orjson_rows, text_lines

#: Above this size pandas' C parser beats ``float()`` per field despite its ~0.5 ms start-up.
_PANDAS_CSV_THRESHOLD_BYTES = 16 * 1024


def _csv_width(lines: list[bytes], first: int = 1, width: int | None = None) -> int:
    """Fields per line, the same on every line, or a 400 naming the first line that differs.

    This is the one shape rule every CSV parser path relies on: pandas' C parser would fill
    a short line with NaN (a silent wrong answer), so the rule is checked here, on the
    lines, before any parser runs. ``map(bytes.count, ...)`` counts in C with no Python
    step per line: under a microsecond for one row, a few milliseconds for 100,000.
    ``first``: the number of the first of ``lines`` in the body; ``width``: line 1's, when
    these lines are a later piece of the body (:func:`decode_pieces`).
    """
    counts = list(map(bytes.count, lines, repeat(b",")))
    expected = counts[0] if width is None else width - 1
    if min(counts) != expected or max(counts) != expected:
        index = next(index for index, count in enumerate(counts) if count != expected)
        number = first + index
        if not lines[index].strip():
            raise BadRequest(f"line {number} is empty; every line must be one record", line=number)
        raise BadRequest(
            f"line {number} has {counts[index] + 1} fields but line 1 has {expected + 1}; "
            "every record must have the same number of features (an empty field is a missing value)",
            line=number,
        )
    return expected + 1


def _csv_field(field: bytes, line: int, column: int) -> float:
    try:
        return float(field)
    except ValueError:
        if is_missing_csv_field(field):
            return math.nan
        shown = field.decode("utf-8", "replace")
        raise BadRequest(
            f"line {line}, column {column}: {shown!r} is not a number "
            "(send numbers; an empty field or 'nan' means missing)",
            line=line,
            column=column,
        ) from None


def _csv_number(field: bytes, row: int, column: Any, first: int = 1) -> float:
    """The CSV rule for a value that must be a number, by 0-based position in a piece whose
    first line is line ``first`` (errors count from 1)."""
    return _csv_field(field, row + first, column + 1)


def _parse_csv_exact(lines: list[bytes], width: int, first: int = 1) -> Batch:
    """The reference CSV parser: slow per field, exact, and precise in its errors.

    ``lines`` already passed :func:`_csv_width` (every line has ``width`` fields). A field
    that is not a number may be a category: the rows go to the model as text
    (:attr:`Batch.cells`), which applies :func:`_csv_number` to every other column."""
    cells = [line.split(b",") for line in lines]
    try:
        rows = [
            [_csv_field(field, number, column) for column, field in enumerate(line, start=1)]
            for number, line in enumerate(cells, start=first)
        ]
    except BadRequest:
        return Batch(cells=cells, number=_csv_number if first == 1 else partial(_csv_number, first=first))
    return Batch(np.array(rows, dtype=np.float64).reshape(len(rows), width))


def _parse_csv_fast(body: bytes) -> np.ndarray | None:
    """pandas' C parser for large bodies; None when it rejects the body (the exact parser explains)."""
    import pandas as pd  # noqa: PLC0415 - imported at worker start by warm_up(); `serve` itself never pays for it

    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            header=None,
            dtype=np.float64,
            skip_blank_lines=False,
            **PANDAS_MISSING_OPTIONS,
            quoting=csv.QUOTE_NONE,  # a quote is data, as in the exact parser
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    return frame.to_numpy(dtype=np.float64)


def _no_short_line(values: np.ndarray, text: bytes, lines: int) -> bool:
    """The shape rule, proven for what pandas parsed (pandas itself refuses a line longer than line 1).

    pandas fills the absent fields of a short line with NaN: with no NaN at all, no line was
    short (a few microseconds for 1,000 rows). With NaNs, some may be real missing values, so
    the commas are counted: exactly lines x (width - 1) means no line is short (~45 us per 60 kB).
    """
    if not np.isnan(values).any():
        return True
    return text.count(b",") == lines * (values.shape[1] - 1)


def _may_hold_words_pandas_reads_as_numbers(text: bytes) -> bool:
    """pandas' C parser reads TRUE/True/true and FALSE/... as 1.0 and 0.0 even with a float
    dtype, where the exact parser (``float()``) refuses them or reads them as categories. No
    number or missing-value word has an r or an s, both of those do: four scans in C."""
    return b"r" in text or b"R" in text or b"s" in text or b"S" in text


def warm_up() -> None:
    """Import the large-body parser now, so no caller waits for it (called at worker start)."""
    import pandas  # noqa: F401, PLC0415


def decode(body: bytes) -> Batch:
    """Every line has the same number of fields (:func:`_csv_width`), whichever parser runs."""
    return _decode_text(text_lines(body))


def _decode_text(text: bytes, first: int = 1, width: int | None = None) -> Batch:
    """Lines ``first``.. of a body (``width``: line 1's fields, when they are not its first lines)."""
    lines = text.split(b"\n")
    if len(text) >= _PANDAS_CSV_THRESHOLD_BYTES and not _may_hold_words_pandas_reads_as_numbers(text):
        values = _parse_csv_fast(text)
        if (
            values is not None
            and values.shape[0] == len(lines)
            and (width is None or values.shape[1] == width)
            and _no_short_line(values, text, len(lines))
        ):
            return Batch(values)
    return _parse_csv_exact(lines, _csv_width(lines, first, width), first)


def decode_pieces(chunks: Iterable[bytes], _length: int) -> Iterator[Batch]:
    """A large body read in chunks, decoded piece by piece (:func:`.text.line_pieces`): each
    piece as :func:`decode` reads a body, its lines numbered as in the whole body, every line
    held to line 1's number of fields."""
    width = None
    for text, first in line_pieces(chunks):
        batch = _decode_text(text, first, width)
        if width is None:
            width = batch.values.shape[1] if batch.values is not None else len(batch.cells[0])  # type: ignore[index]
        yield batch


def _format_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else "nan"


def _encode_values(values: np.ndarray) -> bytes:
    """The default answer: one line per record; multiclass probabilities comma-separated on it."""
    if np.isfinite(values).all():  # orjson would write NaN as null
        text = orjson_rows(values)
        if values.ndim == 1:
            return text[1:-1].replace(b",", b"\n") + b"\n"
        return text[2:-2].replace(b"],[", b"\n") + b"\n"
    if values.ndim == 1:
        lines = [_format_number(value) for value in values.tolist()]
    else:
        lines = [",".join(map(_format_number, row)) for row in values.tolist()]
    return ("\n".join(lines) + "\n").encode()


def encode(table: Table) -> bytes:
    """One line per record (a Batch Transform join stays line for line): each kind's columns in
    the order asked for; a label holding a comma or a quote is quoted as RFC 4180 says."""
    if table.bare:
        return _encode_values(table.columns[0].values)
    per_column = [column.cells() for column in table.columns]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        [cell for cells in row for cell in cells] for row in zip(*per_column, strict=True)
    )
    return buffer.getvalue().encode()


CODEC = Codec(
    "text/csv",
    decode,
    encode,
    aliases=("application/csv", "text/x-csv"),
    rank=0,
    warm_up=warm_up,
    decode_pieces=decode_pieces,
)
