"""Give the memory a large request freed back to the system.

glibc keeps freed heap memory for reuse rather than returning it: after a request that decoded
a 1 GB body piece by piece, a worker would go on holding a few hundred MB it no longer uses (the
whole server's idle memory measured 630-680 MB after such requests against 380 MB before them:
bench/large_bodies.py), which a serverless or multi-model memory budget then lacks.
``malloc_trim(0)`` returns it; it costs about a millisecond, so it runs after large requests
only (a body of :data:`TRIM_AFTER_BYTES` or more), once the answer has been sent
(:class:`..serving.app.CountedApp`), and after a multi-model worker dropped copies of models
(:mod:`..multi_model.store`'s sweeper): the caller never waits for it.

:func:`heap_in_use` is the other side: what a process holds, from malloc's own account
(``mallinfo2``), so a multi-model worker can measure what loading a model cost it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)

#: A request body at least this large is followed by :func:`release_freed_memory` (a 100,000-row
#: CSV is ~12 MB; 1,000 rows ~120 KB, which is never worth it).
TRIM_AFTER_BYTES = 1024 * 1024


@cache
def _libc_function(name: str) -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """A function of the C library by name, or None where it has none (musl has no malloc_trim;
    glibc before 2.33 no mallinfo2): then there is nothing to give back or read this way."""
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return freed heap memory to the system, where the C library can (glibc's malloc_trim)."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc >= 2.33): the allocator's own account of its memory."""

    _fields_ = [
        (field, ctypes.c_size_t)
        for field in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    function = _libc_function("mallinfo2")
    if function is not None:
        function.restype = _MallInfo2
    return function


def heap_in_use() -> int:
    """Bytes malloc has handed out in this process and not had back (0 without glibc's mallinfo2).

    What a multi-model worker measures around a load to learn what a model costs it: a
    Booster's trees, its categories, a user's ``model_fn`` objects are all malloc'd. Not the
    growth of the resident set: that jumps by whole arenas and thread stacks (a 300 KB model's
    load measured 16 MB one time and 0.14 MB the next), and shrinks and regrows with
    :func:`release_freed_memory`, where this agrees with itself within a few KB (repeated loads
    of one model: 287-291 KB). What it leaves out, free space scattered in malloc's arenas, is
    part of the worker's fixed overhead, which ``bench/mme_vs_mms.py --soak`` measures.
    """
    info = _mallinfo2()
    if info is None:
        return 0
    counts = info()
    return int(counts.uordblks + counts.hblkhd)
