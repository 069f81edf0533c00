"""The set of loaded models, shared by every gunicorn worker through files.

Each gunicorn worker is a separate process with its own copy of each model it has used, yet
SageMaker expects one container: a model loaded through one worker must be invocable on all,
an unload must unload everywhere, and every worker must list the same set. The registry is
that shared truth: one small JSON file per loaded model in a directory the supervisor
creates, written atomically (write + rename), with an exclusive lock (``flock``) around
every change that must check-then-act (load, unload, evict). Reads take no lock: a file is
either there, whole, or not.

The file's modification time doubles as the model's "last used" time (``touch`` on every
hit), which gives all workers one least-recently-used order for eviction.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    model_dir: str  # where the model files are (an extracted archive lives in the private cache)
    size_bytes: int
    token: str  # changes with every load, so workers notice an unload + reload
    loaded_at: float

    def public(self) -> dict[str, str]:
        """SageMaker's model description."""
        return {"modelName": self.name, "modelUrl": self.url}


class ModelRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.entries_dir = state_dir / "models"
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        self.lock_path = state_dir / "registry.lock"

    def _path(self, name: str) -> Path:
        return self.entries_dir / (hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest() + ".json")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across all workers: for load, unload and eviction decisions."""
        with open(self.lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get(self, name: str) -> Entry | None:
        try:
            return Entry(**json.loads(self._path(name).read_bytes()))
        except FileNotFoundError:
            return None

    def add(self, name: str, url: str, model_dir: Path, size_bytes: int) -> Entry:
        """Register a model (caller holds the lock)."""
        entry = Entry(name, url, str(model_dir), size_bytes, uuid.uuid4().hex, time.time())
        path = self._path(name)
        staged = path.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(json.dumps(asdict(entry)))
        os.replace(staged, path)
        return entry

    def remove(self, name: str) -> bool:
        try:
            self._path(name).unlink()
            return True
        except FileNotFoundError:
            return False

    def touch(self, name: str) -> None:
        """Mark as just used (the shared LRU order)."""
        try:
            os.utime(self._path(name))
        except FileNotFoundError:
            pass

    def entries(self) -> list[tuple[float, Entry]]:
        """(last used, entry) for every loaded model."""
        found = []
        for path in self.entries_dir.glob("*.json"):
            try:
                found.append((path.stat().st_mtime, Entry(**json.loads(path.read_bytes()))))
            except (FileNotFoundError, ValueError):
                continue  # removed (or being replaced) while we looked
        return found

    def names(self) -> list[str]:
        return sorted(entry.name for _, entry in self.entries())

    def tokens(self) -> dict[str, str]:
        return {entry.name: entry.token for _, entry in self.entries()}

    def bytes_in_use(self) -> int:
        return sum(entry.size_bytes for _, entry in self.entries())

    def least_recently_used(self) -> list[Entry]:
        return [entry for _, entry in sorted(self.entries(), key=lambda pair: pair[0])]
