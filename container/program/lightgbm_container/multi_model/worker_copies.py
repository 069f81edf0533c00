"""This worker's copies of the registered models, least recently used first.

The registry (:mod:`.registry`) says which models are loaded; each worker process holds its
own copy of those it has served, tagged with the registry version it was loaded from, so a
copy of a model that was unloaded or reloaded meanwhile is never served. Each copy also
keeps what the operator asks about: what it measured in memory (its load, and its compiled
trees once switched), how long its load took, and how many requests it answered.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..contract.handler import Served

Version = tuple[int, int]
LOAD_LOCKS = 64


@dataclass
class Copy:
    version: Version
    served: Served
    loaded_bytes: int  # measured around the load (store.MultiModelStore._read)
    load_seconds: float
    compiled_bytes: int = 0  # measured when it switched to compiled trees
    hits: int = 0  # requests answered (the first, which loaded it, included)
    loaded_at: float = field(default_factory=time.time)

    @property
    def bytes(self) -> int:
        return self.loaded_bytes + self.compiled_bytes

    def usage(self) -> dict[str, float]:
        """What :mod:`.usage` publishes for this copy."""
        return {
            "bytes": self.bytes,
            "compiled_bytes": self.compiled_bytes,
            "hits": self.hits,
            "load_seconds": self.load_seconds,
            "loaded_at": self.loaded_at,
        }


class WorkerCopies:
    def __init__(self) -> None:
        self._copies: OrderedDict[str, Copy] = OrderedDict()
        self._lock = threading.Lock()
        # One load of a name per worker, however many threads ask: a lock per name would grow
        # with every name ever asked for (thousands), and removing one in use lets a second
        # load start; names share a fixed set instead (loads are one at a time anyway: store.py).
        self._load_locks = [threading.Lock() for _ in range(LOAD_LOCKS)]

    def get(self, name: str, version: Version) -> Served | None:
        """The copy of ``name`` loaded from ``version`` (now the most recently used, one more
        request counted), else None."""
        with self._lock:
            copy = self._copies.get(name)
            if copy is None or copy.version != version:
                return None
            self._copies.move_to_end(name)
            copy.hits += 1
            return copy.served

    def load_lock(self, name: str) -> threading.Lock:
        return self._load_locks[hash(name) % LOAD_LOCKS]

    def keep(self, name: str, version: Version, served: Served, size: int, load_seconds: float) -> None:
        with self._lock:
            self._copies[name] = Copy(version, served, size, load_seconds, hits=1)
            self._copies.move_to_end(name)

    def compiled(self, name: str, served: Served, size: int) -> bool:
        """``served`` (still this worker's copy of ``name``?) now predicts with compiled trees
        that took ``size`` bytes; False if the copy was dropped or replaced meanwhile."""
        with self._lock:
            copy = self._copies.get(name)
            if copy is None or copy.served is not served:
                return False
            copy.compiled_bytes = size
            return True

    def drop(self, name: str) -> bool:
        """Forget the copy of ``name``; True if there was one."""
        with self._lock:
            return self._copies.pop(name, None) is not None

    def prune(self, current: Callable[[str], Version | None]) -> list[str]:
        """Drop copies whose registry version is gone or changed (``current`` reads the registry);
        returns their names."""
        with self._lock:
            held = [(name, copy.version) for name, copy in self._copies.items()]
        stale = [name for name, version in held if current(name) != version]
        with self._lock:
            for name in stale:
                self._copies.pop(name, None)
        return stale

    def items(self) -> list[tuple[str, Served]]:
        with self._lock:
            return [(name, copy.served) for name, copy in self._copies.items()]

    def usage(self) -> dict[str, dict[str, float]]:
        """Each copy's measured size, load time and hits, by model name."""
        with self._lock:
            return {name: copy.usage() for name, copy in self._copies.items()}

    def footprint(self) -> tuple[int, int]:
        """(copies held, their measured sizes summed)."""
        with self._lock:
            return len(self._copies), sum(copy.bytes for copy in self._copies.values())
