"""``application/x-npy``: a 1-D (one row) or 2-D array of numbers (the SDK's ``NumpySerializer``).

Everything is checked on the header before a byte is copied: the format version, the dtype,
the number of dimensions, and that the declared shape fits the body exactly.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Iterable, Iterator

import numpy as np

from ..errors import BadRequest, EmptyBody
from ..model.batch import Batch
from ..model.outputs import Table
from .codec import Codec

#: The .npy format versions numpy writes and reads (3.0 is 2.0 with a UTF-8 header).
_NPY_VERSIONS = ((1, 0), (2, 0), (3, 0))


def _npy_header(body: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, data offset) from the .npy header, nothing allocated."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in _NPY_VERSIONS:  # numpy's 2.0 reader would read any other version's header as 2.0's
            raise BadRequest(
                f"the .npy header declares format version {version[0]}.{version[1]}, which numpy does not know; "
                f"write the array with numpy.save (versions {', '.join(f'{a}.{b}' for a, b in _NPY_VERSIONS)})",
                version=f"{version[0]}.{version[1]}",
            )
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise BadRequest(f"the body is not a valid .npy array: {exc}") from None
    return shape, fortran_order, dtype, stream.tell()


def _checked_header(head: bytes, length: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """The header of a body of ``length`` bytes that starts with ``head``, checked as :func:`decode` checks it."""
    shape, fortran_order, dtype, offset = _npy_header(head)
    if dtype.kind not in "iuf":
        raise BadRequest(
            f"expected an array of numbers (integer or float dtype), got dtype {dtype}; "
            "cast it, e.g. array.astype('float64')",
            dtype=str(dtype),
        )
    if len(shape) not in (1, 2):
        raise BadRequest(f"expected a 1-D or 2-D array, got {len(shape)} dimensions", shape=list(shape))
    count = math.prod(shape)
    if count * dtype.itemsize != length - offset:
        raise BadRequest(
            f"the .npy header declares shape {tuple(shape)} of {dtype} ({count * dtype.itemsize} bytes) "
            f"but the body holds {length - offset} bytes of data",
            shape=list(shape),
        )
    if count == 0:
        raise EmptyBody(f"the array has shape {tuple(shape)}: no rows to predict, send at least one")
    return shape, fortran_order, dtype, offset


def decode(body: bytes) -> Batch:
    """A 1-D (one row) or 2-D array of integers or floats.

    Everything is checked on the header before a byte is copied: the dtype, the number of
    dimensions, and that the declared shape fits the body exactly (a header may claim any
    shape; ``np.load`` would allocate it first)."""
    shape, fortran_order, dtype, offset = _checked_header(body, len(body))
    array = np.frombuffer(body, dtype=dtype, count=math.prod(shape), offset=offset)
    array = array.reshape(shape, order="F" if fortran_order else "C")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    return Batch(array.astype(np.float64))


#: A .npy header is read from the body's first bytes (numpy pads it to a multiple of 64 bytes).
_HEADER_BYTES = 1 << 20


def decode_pieces(chunks: Iterable[bytes], length: int) -> Iterator[Batch]:
    """A large array read in chunks: the header checked against the body's ``length`` before
    anything else, then whole rows as they arrive (a Fortran-ordered array, stored column by
    column, is read whole: it has no rows until its last column)."""
    stream = iter(chunks)
    pending = b""
    for chunk in stream:
        pending += chunk
        if len(pending) >= min(length, _HEADER_BYTES):
            break
    shape, fortran_order, dtype, offset = _checked_header(pending, length)
    if fortran_order or len(shape) == 1:
        yield decode(pending + b"".join(stream))
        return
    width, row_bytes = shape[1], shape[1] * dtype.itemsize
    pending = pending[offset:]
    for chunk in itertools.chain([b""], stream):
        pending += chunk
        whole = len(pending) - len(pending) % row_bytes
        if whole:
            rows = np.frombuffer(pending, dtype=dtype, count=whole // dtype.itemsize).reshape(-1, width)
            yield Batch(rows.astype(np.float64))
            pending = pending[whole:]


def _save(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def encode(table: Table) -> bytes:
    """The default answer as a plain array (1-D, or 2-D for multiclass), or a structured array
    with one field per kind (``np.load(..., allow_pickle=False)`` reads both)."""
    if table.bare:
        return _save(table.columns[0].values)
    fields = [field for column in table.columns for field in column.npy_fields()]
    structured = np.empty(table.rows, dtype=np.dtype([(name, array.dtype, array.shape[1:]) for name, array in fields]))
    for name, array in fields:
        structured[name] = array
    return _save(structured)


CODEC = Codec("application/x-npy", decode, encode, rank=3, decode_pieces=decode_pieces)
