"""Per-worker numbers, and their sum over the live workers, for ``GET /stats``.

Every worker writes its own numbers to ``<state>/workers/<pid>.json`` (atomically; several
threads publish, so the staging file is per thread); the sum skips files of workers that
are gone, so a replaced worker's numbers leave with it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Mapping


class WorkerBoard:
    def __init__(self, workers_dir: Path) -> None:
        self.workers_dir = workers_dir
        self.workers_dir.mkdir(parents=True, exist_ok=True)

    def publish(self, numbers: Mapping[str, float]) -> None:
        path = self.workers_dir / f"{os.getpid()}.json"
        staged = path.with_suffix(f".{threading.get_ident()}.tmp")
        staged.write_text(json.dumps(dict(numbers)))
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
