"""``application/jsonlines``: one row, record or ``{"features": [...]}`` per line; answers one
value or object per line. The value rules are JSON's (:mod:`.json`), lines counted from 1.
"""

from __future__ import annotations

import orjson

from ..errors import BadRequest
from ..model.batch import Batch
from ..model.outputs import Table
from .codec import Codec
from .json import may_hold_booleans, records_to_batch, rows_to_batch
from .text import lines, orjson_rows


def decode(body: bytes) -> Batch:
    """One JSON value per line: a list of numbers, a record, or ``{"features": [...]}``."""
    items = []
    for number, line in enumerate(lines(body), start=1):
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not valid JSON: {exc}", line=number) from None
        if isinstance(item, dict) and set(item) == {"features"}:
            item = item["features"]
        items.append(item)
    if isinstance(items[0], dict):
        return records_to_batch(items, "line", first=1)
    return rows_to_batch(items, "line", may_hold_booleans(body), first=1)


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
)
