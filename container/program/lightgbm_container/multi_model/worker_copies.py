"""This worker's copies of the registered models, least recently used first.

The registry (:mod:`.registry`) says which models are loaded; each worker process holds its
own copy of those it has served, tagged with the registry version it was loaded from, so a
copy of a model that was unloaded or reloaded meanwhile is never served.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from ..contract.handler import Served

Version = tuple[int, int]


class WorkerCopies:
    def __init__(self) -> None:
        self._copies: OrderedDict[str, tuple[Version, Served, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}  # one load per model per worker, however many threads ask

    def get(self, name: str, version: Version) -> Served | None:
        """The copy of ``name`` loaded from ``version`` (now the most recently used), else None."""
        with self._lock:
            cached = self._copies.get(name)
            if cached is None or cached[0] != version:
                return None
            self._copies.move_to_end(name)
            return cached[1]

    def load_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._load_locks.setdefault(name, threading.Lock())

    def keep(self, name: str, version: Version, served: Served, size: int) -> None:
        with self._lock:
            self._copies[name] = (version, served, size)
            self._copies.move_to_end(name)

    def drop(self, name: str) -> None:
        with self._lock:
            self._copies.pop(name, None)

    def prune(self, current: Callable[[str], Version | None]) -> list[str]:
        """Drop copies whose registry version is gone or changed (``current`` reads the registry);
        returns their names."""
        with self._lock:
            held = [(name, version) for name, (version, _, _) in self._copies.items()]
        stale = [name for name, version in held if current(name) != version]
        with self._lock:
            for name in stale:
                self._copies.pop(name, None)
        return stale

    def items(self) -> list[tuple[str, Served]]:
        with self._lock:
            return [(name, served) for name, (_, served, _) in self._copies.items()]

    def footprint(self) -> tuple[int, int]:
        """(copies held, their sizes summed)."""
        with self._lock:
            return len(self._copies), sum(size for _, _, size in self._copies.values())
