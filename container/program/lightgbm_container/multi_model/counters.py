"""Each worker's multi-model counters, and their sum over the live workers for ``GET /stats``.

Every worker writes its own counters to ``<state>/workers/<pid>.json`` (atomically; the
sweeper and request threads both publish, so the staging file is per thread); the sum
skips files of workers that are gone.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Counters:
    loads: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    unloads: int = 0
    load_seconds: float = 0.0
    local_bytes: int = 0
    local_models: int = 0


class CounterBoard:
    def __init__(self, workers_dir: Path) -> None:
        self.workers_dir = workers_dir
        self.workers_dir.mkdir(parents=True, exist_ok=True)

    def publish(self, counters: Counters) -> None:
        path = self.workers_dir / f"{os.getpid()}.json"
        staged = path.with_suffix(f".{threading.get_ident()}.tmp")
        staged.write_text(json.dumps(asdict(counters)))
        os.replace(staged, path)

    def totals(self) -> tuple[int, dict[str, float]]:
        """(live workers, their counters summed)."""
        totals: dict[str, float] = {}
        workers = 0
        for path in self.workers_dir.glob("*.json"):
            if not _alive(int(path.stem)):
                path.unlink(missing_ok=True)
                continue
            try:
                counters = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            workers += 1
            for key, value in counters.items():
                totals[key] = totals.get(key, 0) + value
        return workers, totals


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
