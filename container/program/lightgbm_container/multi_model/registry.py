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
instead of reading the file, and a worker parses each version's file once
(:meth:`ModelRegistry.entries` then costs one directory listing and a ``stat`` per model).
"Last used" lives in a separate ``.used`` file whose modification time is touched on every
hit, which gives all workers one least-recently-used order for eviction. Its *length* is
what a compiled copy of the model adds to a worker's memory (measured by the worker that
switched to it; a sparse file, so no disk): the same ``stat`` that reads the order reads it.
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
_RECENT_NS = 100_000_000  # a directory changed this recently may change again within its mtime's tick


@dataclass(frozen=True)
class Entry:
    name: str
    url: str
    model_dir: str  # where the model files are (an extracted archive lives in the private cache)
    size_bytes: int  # what the loading worker's copy took in memory (measured: store.MultiModelStore._read)
    loaded_at: float
    load_seconds: float = 0.0

    def public(self) -> dict[str, str]:
        """SageMaker's model description."""
        return {"modelName": self.name, "modelUrl": self.url}


@dataclass(frozen=True)
class Registered:
    """An entry as the registry holds it now: when it was last used and what its compiled copies add."""

    entry: Entry
    last_used: float
    compiled_bytes: int

    @property
    def bytes(self) -> int:
        """What one worker's copy takes: the loaded model, and its compiled trees once switched."""
        return self.entry.size_bytes + self.compiled_bytes


class ModelRegistry:
    def __init__(self, state_dir: Path) -> None:
        self.entries_dir = state_dir / "models"
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        self.lock_path = state_dir / "registry.lock"
        self._hot_paths: dict[str, tuple[str, str]] = {}  # name -> (entry file, .used file), as str
        self._parsed: dict[str, tuple[tuple[int, int], Entry]] = {}  # entry file name -> (version, entry)
        self._listing: tuple[int, list[str]] | None = None  # (directory mtime, names sorted)

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

    def add(self, name: str, url: str, model_dir: Path, size_bytes: int, load_seconds: float) -> Entry:
        """Register a model (caller holds the lock)."""
        entry = Entry(name, url, str(model_dir), size_bytes, time.time(), load_seconds)
        path = self._path(name)
        used = path.with_suffix(".used")
        used.touch()
        os.truncate(used, 0)  # a compiled copy of an earlier version of this name is gone
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

    def note_compiled_bytes(self, name: str, size: int) -> None:
        """A worker switched its copy of ``name`` to compiled trees that take ``size`` bytes more."""
        try:
            os.truncate(self._hot(name)[1], max(0, size))
        except FileNotFoundError:
            pass  # unloaded meanwhile

    def touch(self, name: str) -> None:
        """Mark as just used (the shared LRU order)."""
        try:
            os.utime(self._hot(name)[1])
        except FileNotFoundError:
            pass

    def entries(self) -> list[Registered]:
        """Every loaded model, with its last use and its compiled copies' extra bytes."""
        found = []
        with os.scandir(self.entries_dir) as listing:
            files = [item.name for item in listing if item.name.endswith(".json")]
        for file_name in files:
            path = self.entries_dir / file_name
            try:
                stat = os.stat(path)
                entry = self._parse(file_name, path, (stat.st_ino, stat.st_ctime_ns))
                try:
                    used = os.stat(path.with_suffix(".used"))
                    found.append(Registered(entry, used.st_mtime, used.st_size))
                except FileNotFoundError:
                    found.append(Registered(entry, stat.st_mtime, 0))
            except (FileNotFoundError, ValueError):
                continue  # removed (or being replaced) while we looked
        if len(self._parsed) > 2 * len(files) + 100:  # forget versions no longer registered
            listed = set(files)
            self._parsed = {key: value for key, value in self._parsed.items() if key in listed}
        return found

    def _parse(self, file_name: str, path: Path, version: tuple[int, int]) -> Entry:
        cached = self._parsed.get(file_name)
        if cached is not None and cached[0] == version:
            return cached[1]
        entry = Entry(**json.loads(path.read_bytes()))
        self._parsed[file_name] = (version, entry)
        return entry

    def registered(self, name: str) -> Registered | None:
        """One model as :meth:`entries` gives it, with two ``stat``s (None: not loaded)."""
        path = Path(self._hot(name)[0])
        try:
            stat = os.stat(path)
            entry = self._parse(path.name, path, (stat.st_ino, stat.st_ctime_ns))
        except (FileNotFoundError, ValueError):
            return None
        try:
            used = os.stat(self._hot(name)[1])
        except FileNotFoundError:
            return Registered(entry, stat.st_mtime, 0)
        return Registered(entry, used.st_mtime, used.st_size)

    def names(self) -> list[str]:
        """The loaded models' names, sorted; listed again only when the set changed.

        ``GET /models`` pages through this: a page then costs a ``stat`` of the directory and two
        per model shown, not a pass over every loaded model (1,000 loaded: 15 ms a page before).
        The directory's modification time says whether an entry was added or removed since; one
        that is too recent to tell two changes apart (the clock's tick) is not trusted."""
        changed = os.stat(self.entries_dir).st_mtime_ns
        listing = self._listing
        if listing is not None and listing[0] == changed and time.time_ns() - changed > _RECENT_NS:
            return listing[1]
        names = sorted(registered.entry.name for registered in self.entries())
        self._listing = (changed, names)
        return names

    def bytes_in_use(self) -> int:
        """What the registered models take in one worker holding them all (the budget's measure)."""
        return sum(registered.bytes for registered in self.entries())

    def least_recently_used(self) -> list[Registered]:
        return sorted(self.entries(), key=lambda registered: registered.last_used)
