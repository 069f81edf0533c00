"""Give the memory a large request freed back to the system.

glibc keeps freed heap memory for reuse rather than returning it: after a request that decoded
a 1 GB body piece by piece, a worker would go on holding a few hundred MB it no longer uses (the
whole server's idle memory measured 630-680 MB after such requests against 380 MB before them:
bench/large_bodies.py), which a serverless or multi-model memory budget then lacks.
``malloc_trim(0)`` returns it; it costs milliseconds, so it runs after large requests only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger(__name__)


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
