"""Paths that must stay inside a root: model files, and model names and URLs from callers.

The two facts every such check needs, in one place: how to follow every link of a path
(a link loop is an ``OSError`` here, whatever the Python version reports), and when a
path lies inside a root.
"""

from __future__ import annotations

import errno
from pathlib import Path


def resolve_strictly(path: Path) -> Path:
    """``path`` with every symbolic link followed; OSError (FileNotFoundError if missing) otherwise.

    Python 3.11 reports a link loop as RuntimeError, later versions as OSError(ELOOP)."""
    try:
        return path.resolve(strict=True)
    except RuntimeError as exc:
        raise OSError(errno.ELOOP, str(exc), str(path)) from None


def is_within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies below it (compare resolved paths, or normalised ones)."""
    return path == root or root in path.parents
