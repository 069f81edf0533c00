"""A worker's switch from LightGBM's predictor to the compiled trees, between requests.

One thread per worker watches the status files of the compile jobs its models wait for
(:mod:`.status`). Each time a job reports an object (a quick one first, then the fully
optimised one), the thread loads it (LLVM maps it; lleaves'
calls release the GIL, so requests keep being served meanwhile) and hands it to the
model's ``install`` callback, which replaces the predictor with one assignment: a request
already running finishes with the predictor it started with, the next one uses the new
one. Both agree to 1e-9 (the job checked), so no answer changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..observability import metrics
from .status import READY, CompileStatus, read_status

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2

#: ``install(object_file)`` swaps a model's predictor; returns why not (None when it switched).
Install = Callable[[Path], "str | None"]


@dataclass
class SwitchCounts:
    switched: int = 0
    current: str | None = None  # the object last switched to (single-model: the one model's)


class Switcher:
    def __init__(self) -> None:
        self._watched: dict[int, tuple[Path, Install, str]] = {}
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_id = 0
        self._installed: dict[int, str | None] = {}  # handle -> the object it predicts with
        self.counts = SwitchCounts()
        self.listeners: list[
            Callable[[SwitchCounts], None]
        ] = []  # told after every switch and every finished job (/stats)

    def watch(self, status_file: Path, install: Install, label: str) -> int:
        """Switch ``label`` once the job behind ``status_file`` is done; returns a handle for :meth:`forget`."""
        with self._lock:
            self._next_id += 1
            self._watched[self._next_id] = (status_file, install, label)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="compiled-switch", daemon=True)
                self._thread.start()
        self._wakeup.set()
        return self._next_id

    def forget(self, handle: int) -> None:
        """The model went away (evicted, unloaded) before its compile finished."""
        with self._lock:
            self._watched.pop(handle, None)
            self._installed.pop(handle, None)

    def _run(self) -> None:
        while True:
            self._wakeup.wait(POLL_SECONDS if self._watched else None)  # idle once nothing is pending
            self._wakeup.clear()
            with self._lock:
                watched = list(self._watched.items())
            for handle, (status_file, install, label) in watched:
                status = read_status(status_file)
                if status is None:
                    continue
                if status.state == READY and status.object != self._installed.get(handle):
                    self._installed[handle] = status.object  # a quick object first, the optimised one later
                    self._switch(status, install, label)
                if not status.finished:
                    continue
                with self._lock:
                    self._watched.pop(handle, None)
                    self._installed.pop(handle, None)
                if status.state != READY:
                    log.warning("%s keeps its predictor: the compile %s", label, status.describe())
                self._tell()  # finished: e.g. the quick object may now be the final one

    def _switch(self, status: CompileStatus, install: Install, label: str) -> None:
        try:
            problem = install(Path(str(status.object)))
        except Exception as exc:
            log.exception("switching %s to the compiled trees failed", label)
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            log.warning("%s keeps its predictor: %s", label, problem)
            return
        self.counts.switched += 1
        metrics.PREDICTOR_SWITCHES.inc()
        self.counts.current = status.object
        log.info("switched %s to the compiled trees (%s)", label, status.describe())
        self._tell()

    def _tell(self) -> None:
        for notify in self.listeners:
            notify(self.counts)


@cache
def switcher() -> Switcher:
    """This worker's switcher (one watching thread per process, started on first use)."""
    return Switcher()
