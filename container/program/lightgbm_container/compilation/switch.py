"""A worker's switch from LightGBM's predictor to the compiled trees, between requests.

One thread per worker watches the status files of the compile jobs its models wait for
(:mod:`.status`). When a job is ready, the thread loads the object (LLVM maps it; lleaves'
calls release the GIL, so requests keep being served meanwhile) and hands it to the
model's ``install`` callback, which replaces the predictor with one assignment: a request
already running finishes with the predictor it started with, the next one uses the new
one. Both agree to 1e-9 (the job checked), so no answer changes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .status import READY, CompileStatus, read_status

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2

#: ``install(object_file)`` swaps a model's predictor; returns why not (None when it switched).
Install = Callable[[Path], "str | None"]


@dataclass
class SwitchCounts:
    waiting: int = 0
    switched: int = 0
    kept_lightgbm: int = 0
    last: str = ""  # the last outcome, for /stats and the log


class Switcher:
    def __init__(self) -> None:
        self._watched: dict[int, tuple[Path, Install, str]] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 0
        self.counts = SwitchCounts()
        self.listeners: list[Callable[[SwitchCounts], None]] = []  # told after every switch (e.g. to publish /stats)

    def watch(self, status_file: Path, install: Install, label: str) -> int:
        """Switch ``label`` once the job behind ``status_file`` is done; returns a handle for :meth:`forget`."""
        with self._lock:
            self._next_id += 1
            self._watched[self._next_id] = (status_file, install, label)
            self.counts.waiting = len(self._watched)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="compiled-switch", daemon=True)
                self._thread.start()
        self._wakeup.set()
        return self._next_id

    def forget(self, handle: int) -> None:
        """The model went away (evicted, unloaded) before its compile finished."""
        with self._lock:
            self._watched.pop(handle, None)
            self.counts.waiting = len(self._watched)

    def _run(self) -> None:
        while True:
            self._wakeup.wait(POLL_SECONDS if self._watched else None)  # idle once nothing is pending
            self._wakeup.clear()
            with self._lock:
                watched = list(self._watched.items())
            for handle, (status_file, install, label) in watched:
                status = read_status(status_file)
                if status is None or not status.finished:
                    continue
                with self._lock:
                    if self._watched.pop(handle, None) is None:
                        continue  # forgotten meanwhile
                    self.counts.waiting = len(self._watched)
                self._finish(status, install, label)

    def _finish(self, status: CompileStatus, install: Install, label: str) -> None:
        if status.state == READY:
            started = time.monotonic()
            try:
                problem = install(Path(status.object))
            except Exception as exc:  # noqa: BLE001 - LightGBM keeps serving; the reason is logged
                log.exception("switching %s to the compiled trees failed", label)
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                self.counts.switched += 1
                self.counts.last = f"{label}: compiled trees ({status.source}), switched in {time.monotonic() - started:.2f} s"
                log.info("switched %s to the compiled trees (%s)", label, status.describe())
            else:
                self.counts.kept_lightgbm += 1
                self.counts.last = f"{label}: LightGBM ({problem})"
                log.warning("%s keeps predicting with LightGBM: %s", label, problem)
        else:
            self.counts.kept_lightgbm += 1
            self.counts.last = f"{label}: LightGBM (compile {status.describe()})"
            log.warning("%s keeps predicting with LightGBM: the compile %s", label, status.describe())
        for notify in self.listeners:
            notify(self.counts)


_switcher: Switcher | None = None


def switcher() -> Switcher:
    """This worker's switcher (one watching thread per process, started on first use)."""
    global _switcher
    if _switcher is None:
        _switcher = Switcher()
    return _switcher
