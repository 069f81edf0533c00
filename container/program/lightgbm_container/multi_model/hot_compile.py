"""Multi-model mode at compiled speed: the models a worker keeps using get compiled.

A cold load stays as fast as before (LightGBM's predictor, no compile on the load path).
Once a worker has answered :data:`HOT_AFTER_REQUESTS` requests with its copy of a model,
the model counts as hot: a compile job (:mod:`..compilation.job`) starts for it unless one
already ran for the same file. Jobs run one at a time for the whole server (a lock file
they queue on), at the lowest priority; the object lands in the compile cache under the
model's hash, so every worker, and every later load of the same file, uses it. Each worker
switches its own copy between requests (:mod:`..compilation.switch`) as soon as the job
reports (a worker that did not start the job notices it within a sweep), and a copy loaded
after that switches at once. A failed compile is not retried:
the model keeps LightGBM's predictor, and ``/stats`` says so.

Only models the built-in handler loads are compiled; user code's models are its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..builtin.handler import LightGBMHandler
from ..compilation.launch import CompileJob
from ..compilation.status import read_status
from ..compilation.switch import switcher
from ..contract.handler import Served
from ..model.files import file_identity
from ..observability import metrics

log = logging.getLogger(__name__)

#: Requests one worker answers with a model before that model is compiled: a few seconds of
#: modest traffic, and well past the models that are loaded for one request and evicted.
HOT_AFTER_REQUESTS = 100


class HotCompiler:
    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path,
        timeout_seconds: int,
        memory_mb: int,
        switched: Callable[[str, Served, int], None],
    ) -> None:
        """``switched(name, served, bytes)``: a copy now predicts with compiled trees that took ``bytes``."""
        self.status_dir = state_dir / "compiles"
        self.status_dir.mkdir(parents=True, exist_ok=True)
        self.queue_lock = state_dir / "compile.lock"
        self.cache_dir = cache_dir
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.switched = switched
        # LLVM's import takes ~10 MB of anonymous memory once per worker: paid at start, so the
        # first model to switch is not charged with it (its compiled size is measured).
        import lleaves  # noqa: F401, PLC0415

        self._hits: dict[str, int] = {}
        self._watching: dict[str, int] = {}  # model name -> the switcher's handle
        self._lock = threading.Lock()

    def loaded(self, name: str, served: Served) -> None:
        """A new copy in this worker: switch at once when its file was compiled already."""
        self.dropped(name)  # a reload replaces the previous copy
        with self._lock:
            self._hits[name] = 0
        status_file = self._status_file(served)
        if status_file is not None and read_status(status_file) is not None:
            self._watch(name, served, status_file)

    def hit(self, name: str, served: Served) -> None:
        with self._lock:
            hits = self._hits.get(name, 0) + 1
            self._hits[name] = hits
            if hits != HOT_AFTER_REQUESTS or name in self._watching:
                return
        status_file = self._status_file(served)
        if status_file is None:
            return
        if self._claim(status_file):
            log.info("model %s is hot (%d requests in this worker): compiling it in the background", name, hits)
            job = CompileJob(
                served.model.model_file,
                self.cache_dir,
                status_file,
                self.timeout_seconds,
                self.memory_mb,
                self.queue_lock,
            )
            job.start()
            job.reap_in_background()
            metrics.COMPILES_STARTED.inc()
        self._watch(name, served, status_file)

    def sweep(self, copies: list[tuple[str, Served]]) -> None:
        """Copies that became hot in another worker: follow its compile (a few stats per sweep)."""
        for name, served in copies:
            if name in self._watching:
                continue
            status_file = self._status_file(served)
            if status_file is not None and read_status(status_file) is not None:
                self._watch(name, served, status_file)

    def dropped(self, name: str) -> None:
        """The copy was evicted, unloaded or replaced: stop waiting for its compile."""
        with self._lock:
            self._hits.pop(name, None)
            handle = self._watching.pop(name, None)
        if handle is not None:
            switcher().forget(handle)

    def compiled_copies(self, copies: list[Served]) -> tuple[int, int]:
        """(copies predicting with compiled trees, of which on the object their job finished with)."""
        compiled = final = 0
        for served in copies:
            predictor = getattr(served.model, "predictor", None)
            if predictor is None or getattr(predictor, "name", "") != "lleaves":
                continue
            compiled += 1
            status_file = self._status_file_of(served.model.model_file)
            status = read_status(status_file)
            if status is not None and status.finished and status.object == str(predictor.object_file):
                final += 1
        return compiled, final

    # ------------------------------------------------------------------ internals

    def _status_file(self, served: Served) -> Path | None:
        """Where the compile of this copy's file reports (None: not a built-in LightGBM model)."""
        model = served.model
        if not isinstance(served.handler, LightGBMHandler) or getattr(model, "predictor", None) is None:
            return None
        if model.predictor.name != "lightgbm":
            return None
        return self._status_file_of(model.model_file)

    def _status_file_of(self, model_file: Path) -> Path:
        # Same file -> same job, whichever worker or model name asks.
        return self.status_dir / f"{file_identity(model_file)}.json"

    @staticmethod
    def _claim(status_file: Path) -> bool:
        """True for the one worker that gets to start the job for ``status_file``."""
        try:
            os.close(os.open(status_file.with_suffix(".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _watch(self, name: str, served: Served, status_file: Path) -> None:
        with self._lock:
            if name in self._watching:
                return
            assert isinstance(served.handler, LightGBMHandler)  # _status_file said so
            handle = served.handler.switch_when_compiled(
                served.model, status_file, measured=partial(self.switched, name, served)
            )
            self._watching[name] = handle
