"""``application/jsonlines``: one row, record or ``{"features": [...]}`` per line; answers one
value or object per line. The value rules are JSON's (:mod:`.json`), lines counted from 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from ..errors import BadRequest
from ..model.batch import Batch
from ..model.outputs import Table
from .codec import Codec
from .json import may_hold_booleans, records_to_batch, rows_to_batch
from .text import line_pieces, orjson_rows, text_lines


def decode(body: bytes) -> Batch:
    """One JSON value per line: a list of numbers, a record, or ``{"features": [...]}``."""
    return _decode_text(text_lines(body))


def _decode_text(text: bytes, first: int = 1, shape: tuple[bool, int | None] | None = None) -> Batch:
    """Lines ``first``.. of a body; ``shape``: (records?, row width) of its line 1, when these
    lines are a later piece of it."""
    items = []
    for number, line in enumerate(text.split(b"\n"), start=first):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not valid JSON: {exc}", line=number) from None
        if isinstance(item, dict) and set(item) == {"features"}:
            item = item["features"]
        items.append(item)
    records = isinstance(items[0], dict) if shape is None else shape[0]
    if records:
        return records_to_batch(items, "line", first=first, base=1)
    return rows_to_batch(items, "line", may_hold_booleans(text), first=first, base=1, width=shape and shape[1])


def decode_pieces(chunks: Iterable[bytes], _length: int) -> Iterator[Batch]:
    """A large body read in chunks, decoded piece by piece (:func:`.text.line_pieces`): lines
    numbered as in the whole body, every piece held to line 1's kind (records or rows) and width."""
    shape: tuple[bool, int | None] | None = None
    for text, first in line_pieces(chunks):
        batch = _decode_text(text, first, shape)
        if shape is None:
            width = batch.values.shape[1] if batch.values is not None else None
            if batch.cells is not None:
                width = len(batch.cells[0])
            shape = (batch.records is not None, width)
        yield batch


def encode(table: Table) -> bytes:
    """One JSON value per line: the default answer's number (or list of class probabilities),
    or one object per record keyed by kind (NaN -> null)."""
    if table.bare:
        values = table.columns[0].values
        text = orjson_rows(values)
        if values.ndim == 1:
            return text[1:-1].replace(b",", b"\n") + b"\n"
        return text[1:-1].replace(b"],[", b"]\n[") + b"\n"
    return b"".join(orjson.dumps(record) + b"\n" for record in table.records())


CODEC = Codec(
    "application/jsonlines",
    decode,
    encode,
    aliases=("application/x-jsonlines", "application/jsonl", "application/x-ndjson"),
    rank=2,
    decode_pieces=decode_pieces,
)
