"""Give the memory a large request freed back to the system.

glibc keeps freed heap memory for reuse rather than returning it: after a request that decoded
a 1 GB body piece by piece, a worker would go on holding a few hundred MB it no longer uses (the
whole server's idle memory measured 630-680 MB after such requests against 380 MB before them:
bench/large_bodies.py), which a serverless or multi-model memory budget then lacks.
``malloc_trim(0)`` returns it; it costs about a millisecond, so it runs after large requests
only (a body of :data:`TRIM_AFTER_BYTES` or more), once the answer has been sent
(:class:`..serving.app.CountedApp`): the caller never waits for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger(__name__)

#: A request body at least this large is followed by :func:`release_freed_memory` (a 100,000-row
#: CSV is ~12 MB; 1,000 rows ~120 KB, which is never worth it).
TRIM_AFTER_BYTES = 1024 * 1024


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to give back this way
        return None


def release_freed_memory() -> None:
    """Return freed heap memory to the system, where the C library can (glibc's malloc_trim)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
