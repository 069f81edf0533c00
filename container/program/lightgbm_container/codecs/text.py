"""Pieces the text codecs share: a body's lines, and floats written as JSON writes them."""

from __future__ import annotations

import numpy as np
import orjson


def text_lines(body: bytes) -> bytes:
    """The body with ``\\r\\n`` line ends normalised and trailing line breaks removed."""
    text = body.rstrip(b"\r\n")
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    return text


def lines(body: bytes) -> list[bytes]:
    return text_lines(body).split(b"\n")


def orjson_rows(values: np.ndarray) -> bytes:
    """``[1.5,2.0]`` or ``[[0.1,0.9],[0.5,0.5]]``: orjson writes shortest round-trip floats
    ~20x faster than ``repr`` in a loop (3 ms instead of 65 ms for 100,000 values)."""
    return orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
