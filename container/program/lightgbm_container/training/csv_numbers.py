"""The fast path for CSV files of plain numbers: pandas' C parser on every core, into Arrow.

Why: LightGBM bins an Arrow table directly, so a table of numbers read into Arrow is held
once (a pandas frame is copied into a float64 matrix first). pyarrow's own CSV reader does
that, but on these machines it parses 2x slower per core than pandas' C parser, and pandas'
own parallel ``read_csv`` (pandas >= 3.1) memory-maps the file and concatenates its pieces
(~2x the table at its peak). So the file is cut at line ends into pieces of 4-64 MB, each
piece is parsed by ``read_csv`` in a thread of its own (the parser releases the GIL while it
tokenizes and converts), and each piece's float64 columns go to Arrow without a copy.

Each piece is parsed with the pandas path's own options (the same missing-value tokens, the
same float conversion), so the numbers are the ones the pandas path reads and the model is
the same (tests/process/test_train_formats.py). Anything a piece cannot read as numbers (text
in a column, a ragged row, a quoted line end the cut fell in, an encoding) gives ``None``, and
the channel is read again by the pandas path, whose errors name the file, line and column.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from ..missing_values import PANDAS_MISSING_OPTIONS
from ..settings.resources import available_cores
from . import arrow_tables, progress

# A file is cut into ~2 pieces per thread, of 4-64 MB: few and large ones parse fastest (1 GB
# on 2 threads: in 4 MB pieces 1.6 s, in 64 MB pieces 1.25 s), and 2 per thread keep every
# thread busy to the end. A compressed file is cut as it is decompressed, in 64 MB pieces.
MAX_PIECE_BYTES = 64 << 20
MIN_PIECE_BYTES = 4 << 20

_DECOMPRESSORS: dict[str, Callable[[Path], Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


class _NotPlainNumbers(Exception):
    """A piece the pandas path must read (it will say exactly what is wrong)."""


def read_numbers(path: Path, columns: int, has_header: bool, display: str) -> Any | None:
    """The file's ``columns`` columns as an Arrow table of float64 (numbered "0", "1", ...;
    missing values as nulls), or None when the pandas path must read it."""
    suffix = path.suffix.lower()
    if not arrow_tables.available() or (suffix not in _DECOMPRESSORS and _compressed(path)):
        return None
    import pyarrow as pa  # noqa: PLC0415 - pyarrow: train only (packages.py)

    started = time.monotonic()
    names = [str(i) for i in range(columns)]
    threads = available_cores()
    try:
        with ThreadPoolExecutor(threads) as pool:
            if suffix in _DECOMPRESSORS:
                with _DECOMPRESSORS[suffix](path) as stream:  # read here while the threads parse
                    tables = _parse_in_order(
                        pool, _stream_pieces(stream, has_header, MAX_PIECE_BYTES), names, window=2 * threads
                    )
            else:
                with open(path, "rb") as file:
                    piece = min(max(os.fstat(file.fileno()).st_size // (2 * threads), MIN_PIECE_BYTES), MAX_PIECE_BYTES)
                    pieces = (_Range(file.fileno(), start, end) for start, end in _ranges(file, has_header, piece))
                    tables = _parse_in_order(pool, pieces, names, window=2 * threads)
    except (_NotPlainNumbers, OSError, EOFError, lzma.LZMAError):
        return None
    tables = [table for table in tables if table.num_rows]
    if not tables:
        return None  # empty, or a header alone: the pandas path says so
    table = pa.concat_tables(tables)
    progress.file_read(
        display, path, table.num_rows, columns, has_header, started, f"pandas C parser, {threads} threads"
    )
    return table


def _compressed(path: Path) -> bool:
    """Whether the file starts like an archive or a compressed stream that is not named so (a
    .zip; a text/csv channel takes files of any name): pandas opens those."""
    with open(path, "rb") as file:
        magic = file.read(6)
    return magic.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"PK\x03\x04", b"\x28\xb5\x2f\xfd"))


def _ranges(file: Any, has_header: bool, piece: int) -> list[tuple[int, int]]:
    """[start, end) byte ranges of ~``piece`` bytes that begin at a line's start."""
    size = os.fstat(file.fileno()).st_size
    file.seek(0)
    if has_header:
        file.readline()
    bounds = [file.tell()]
    while bounds[-1] + piece < size:
        file.seek(bounds[-1] + piece)
        file.readline()  # to the end of the line the cut fell in
        bounds.append(file.tell())
    if bounds[-1] < size:
        bounds.append(size)
    return list(pairwise(bounds))


class _Range:
    """Bytes [start, end) of an open file, read by the parser in its own small chunks (256 KB,
    warm in the cache as it tokenizes them; a whole piece read up front parsed ~20 % slower)."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.position, self.end = fd, start, end

    def read(self, size: int = -1) -> bytes:
        size = self.end - self.position if size < 0 else min(size, self.end - self.position)
        data = os.pread(self.fd, size, self.position) if size > 0 else b""
        self.position += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:  # pandas takes objects with read() and __iter__ as files
        return iter(lambda: self.read(1 << 18), b"")


def _stream_pieces(stream: Any, has_header: bool, piece: int) -> Iterator[bytes]:
    """A decompressed stream cut into pieces of whole lines, of about ``piece`` bytes."""
    if has_header:
        stream.readline()
    carry = b""
    while block := stream.read(piece):
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        if cut:
            yield data[:cut]
    if carry.strip():
        yield carry


def _parse_in_order(pool: ThreadPoolExecutor, pieces: Iterator[Any], names: list[str], window: int) -> list[Any]:
    """Each piece parsed on the pool, the tables in the pieces' order; at most ``window``
    pieces are read ahead of the one awaited (a piece is read on this thread, as it is handed out)."""
    pending: list[Any] = []
    tables: list[Any] = []
    for data in pieces:
        pending.append(pool.submit(_parse, data, names))
        if len(pending) >= window:
            tables.append(pending.pop(0).result())
    tables.extend(future.result() for future in pending)
    return tables


def _parse(data: Any, names: list[str]) -> Any:
    """One piece as an Arrow table, parsed as the pandas path parses (``channels._read_file``:
    the same missing-value tokens), but as float64 from the start: with the types given, the
    whole-piece inference of ``low_memory=False`` is not needed (it doubled the time)."""
    import pandas as pd  # noqa: PLC0415 - pandas only when a file is read
    import pyarrow as pa  # noqa: PLC0415 - pyarrow: train only (packages.py)

    try:
        frame = pd.read_csv(
            io.BytesIO(data) if isinstance(data, bytes) else data,
            header=None,
            dtype=np.float64,
            skip_blank_lines=True,
            **PANDAS_MISSING_OPTIONS,
        )
    except pd.errors.EmptyDataError:  # blank lines only
        return pa.table({name: pa.array([], pa.float64()) for name in names})
    except (pd.errors.ParserError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise _NotPlainNumbers(str(exc)) from None
    if frame.shape[1] != len(names):
        raise _NotPlainNumbers(f"{frame.shape[1]} columns, not {len(names)}")
    # from_pandas: NaN (a missing value) becomes a null, as pyarrow's readers give it; the numbers are not copied.
    return pa.Table.from_arrays(
        [pa.array(frame[column].to_numpy(), from_pandas=True) for column in frame.columns], names=names
    )
