"""Files other processes read while they are being written: written whole or not at all.

Workers, the supervisor and compile jobs share files (health states, compile status, the
multi-model registry, text derived from pickles). Each is written beside its final name and
renamed over it, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path``, replacing it in one step (the staged name is unique per process and thread)."""
    staged = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    staged.write_bytes(data)
    os.replace(staged, path)


def write_once(directory: Path, prefix: str, suffix: str, data: bytes) -> Path:
    """``data`` in ``directory`` under its SHA-256 (``<prefix>-<digest><suffix>``), written only
    if absent: every process deriving the same content names and finds the same file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}-{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not path.is_file():
        write_atomically(path, data)
    return path
