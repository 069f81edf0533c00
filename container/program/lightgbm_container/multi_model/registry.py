"""The set of loaded models, shared by every gunicorn worker through files.

Each gunicorn worker is a separate process with its own copy of each model it has used, yet
SageMaker expects one container: a model loaded through one worker must be invocable on all,
an unload must unload everywhere, and every worker must list the same set. The registry is
that shared truth: one small JSON file per loaded model in a directory the supervisor
creates, written atomically (write + rename), with an exclusive lock (``flock``) around
every change that must check-then-act (load, unload, evict). Reads take no lock: a file is
either there, whole, or not.

An entry file never changes after it is written, so ``(inode, ctime)`` from one ``stat``
identifies a version of a model: workers check that (a few microseconds) on every request
instead of reading the file. "Last used" lives in a separate empty ``.used`` file whose
modification time is touched on every hit, which gives all workers one least-recently-used
order for eviction.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic_files import write_atomically

_HOT_PATHS_KEPT = 10_000  # names whose file paths a worker remembers (then it starts over)


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    model_dir: str  # where the model files are (an extracted archive lives in the private cache)
    size_bytes: int
    loaded_at: float

    def public(self) -> dict[str, str]:
        """SageMaker's model description."""
        return {"modelName": self.name, "modelUrl": self.url}


class ModelRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.entries_dir = state_dir / "models"
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        self.lock_path = state_dir / "registry.lock"
        self._hot_paths: dict[str, tuple[str, str]] = {}  # name -> (entry file, .used file), as str

    def _path(self, name: str) -> Path:
        return self.entries_dir / (hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest() + ".json")

    def _hot(self, name: str) -> tuple[str, str]:
        """The two files every request stats and touches, as strings computed once per name:
        hashing and Path arithmetic cost more than the two syscalls themselves (bench/multi_model.py)."""
        paths = self._hot_paths.get(name)
        if paths is None:
            if len(self._hot_paths) >= _HOT_PATHS_KEPT:
                self._hot_paths.clear()
            entry = self._path(name)
            paths = self._hot_paths[name] = (str(entry), str(entry.with_suffix(".used")))
        return paths

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across all workers: for load, unload and eviction decisions."""
        with open(self.lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def version(self, name: str) -> tuple[int, int] | None:
        """Identifies the registered version of ``name`` (None: not loaded), with one stat."""
        try:
            stat = os.stat(self._hot(name)[0])
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_ctime_ns

    def get(self, name: str) -> Entry | None:
        try:
            return Entry(**json.loads(self._path(name).read_bytes()))
        except FileNotFoundError:
            return None

    def add(self, name: str, url: str, model_dir: Path, size_bytes: int) -> Entry:
        """Register a model (caller holds the lock)."""
        entry = Entry(name, url, str(model_dir), size_bytes, time.time())
        path = self._path(name)
        path.with_suffix(".used").touch()
        write_atomically(path, json.dumps(asdict(entry)).encode())
        return entry

    def remove(self, name: str) -> bool:
        path = self._path(name)
        path.with_suffix(".used").unlink(missing_ok=True)
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False

    def touch(self, name: str) -> None:
        """Mark as just used (the shared LRU order)."""
        try:
            os.utime(self._hot(name)[1])
        except FileNotFoundError:
            pass

    def _last_used(self, path: Path) -> float:
        try:
            return path.with_suffix(".used").stat().st_mtime
        except FileNotFoundError:
            return path.stat().st_mtime

    def entries(self) -> list[tuple[float, Entry]]:
        """(last used, entry) for every loaded model."""
        found = []
        for path in self.entries_dir.glob("*.json"):
            try:
                found.append((self._last_used(path), Entry(**json.loads(path.read_bytes()))))
            except (FileNotFoundError, ValueError):
                continue  # removed (or being replaced) while we looked
        return found

    def names(self) -> list[str]:
        return sorted(entry.name for _, entry in self.entries())

    def bytes_in_use(self) -> int:
        return sum(entry.size_bytes for _, entry in self.entries())

    def least_recently_used(self) -> list[Entry]:
        return [entry for _, entry in sorted(self.entries(), key=lambda pair: pair[0])]
