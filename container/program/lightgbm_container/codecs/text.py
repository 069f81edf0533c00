"""Pieces the text codecs share: a body's lines, and floats written as JSON writes them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import orjson

from ..errors import EmptyBody


def text_lines(body: bytes) -> bytes:
    """The body with ``\\r\\n`` line ends normalised and trailing line breaks removed."""
    text = body.rstrip(b"\r\n")
    if b"\r" in text:
        text = text.replace(b"\r\n", b"\n")
    return text


def lines(body: bytes) -> list[bytes]:
    return text_lines(body).split(b"\n")


def line_pieces(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """A body read in chunks as pieces of whole lines: ``(text, number of its first line)``.

    Each piece is what :func:`text_lines` would give for those lines of the whole body (CRLF
    normalised, no line break at its end), so a decoder reads it exactly as it reads a body;
    only the body's own trailing line breaks are dropped, as :func:`text_lines` drops them. A
    run of line breaks at a chunk's end waits for the next chunk: those are blank lines (an
    error a decoder names) unless the body ends there."""
    first = 1
    pending = b""
    yielded = False
    for chunk in chunks:
        pending += chunk
        if b"\r" in pending:  # a \r\n split between two chunks is whole again here
            pending = pending.replace(b"\r\n", b"\n")
        cut = pending.rfind(b"\n")
        end = cut
        while end > 0 and pending[end - 1] == 0x0A:  # hold back the line breaks before it
            end -= 1
        if end <= 0:
            continue
        piece, pending = pending[:end], pending[end + 1 :]  # the break that ends the piece's last line goes
        yield piece, first
        yielded = True
        first += piece.count(b"\n") + 1
    last = pending.rstrip(b"\r\n")
    if last:
        yield last, first
    elif not yielded:
        raise EmptyBody("the request body is empty; send one or more records")


def orjson_rows(values: np.ndarray) -> bytes:
    """``[1.5,2.0]`` or ``[[0.1,0.9],[0.5,0.5]]``: orjson writes shortest round-trip floats
    ~20x faster than ``repr`` in a loop (3 ms instead of 65 ms for 100,000 values)."""
    return orjson.dumps(np.ascontiguousarray(values, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
