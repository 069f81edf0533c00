"""Multi-model mode: SageMaker's /models API and lazy TargetModel loading, one store.

The parts, each in its own module:

- :mod:`.registry`: the loaded set, shared by every gunicorn worker through files (+ a lock);
- :mod:`.worker_copies`: this worker's copies, checked against the registry on each request
  (one ``stat``), so a model loaded, reloaded or unloaded through any worker is seen the
  same way by all;
- :mod:`.archives`: model names and URLs confined to the models directory, archives
  extracted safely;
- :mod:`.api`: the request side of the /models API (load body, paging).

This module decides: what to load, what to evict (least recently used, within the memory
budget), and which handler serves each model (the built-in one, or the model's own code).
A background sweeper frees, within half a second, the copies of models that another worker
unloaded or evicted, and refreshes this worker's gauges (:mod:`..observability.metrics`;
``GET /stats`` is a view of the same numbers).

Memory: every worker may hold every registered model, so the budget
(``LIGHTGBM_MODEL_CACHE_MB``, default from the container's memory limit and the number of
workers) bounds the registry's total, and each worker holds a subset of the registry.
A model's size is its model file's size (LightGBM's in-memory forest is about that size).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import codecs
from ..compilation.switch import switcher
from ..confinement import OutsideRoot, first_link_outside, resolve_inside
from ..contract.handler import Handler, Served
from ..errors import BadRequest, Conflict, InsufficientStorage, ModelNotFound, UserCodeSetupError
from ..model.files import ModelLoadError, file_identity
from ..observability import metrics
from ..observability.exposition import totals
from ..safe_tar import extract_archive, is_archive
from ..settings import Runtime, ServingSettings
from . import api
from .archives import resolve_model_path, resolve_model_url
from .hot_compile import HotCompiler
from .registry import Entry, ModelRegistry
from .worker_copies import WorkerCopies

log = logging.getLogger(__name__)

SWEEP_SECONDS = 0.5
#: ``(model directory, settings, runtime, root, model name) -> handler``.
HandlerFor = Callable[[Path, ServingSettings, Runtime, Path | None, str], Handler]

#: ``GET /stats`` key -> the metric it shows (summed over the workers; counters keep a replaced worker's counts).
STATS_METRICS = {
    "workers": "lightgbm_workers",
    "loads": "lightgbm_model_loads_total",
    "hits": "lightgbm_model_cache_hits_total",
    "misses": "lightgbm_model_cache_misses_total",
    "evictions": "lightgbm_model_evictions_total",
    "unloads": "lightgbm_model_unloads_total",
    "local_models": "lightgbm_model_copies",
    "local_bytes": "lightgbm_model_copies_bytes",
    "compiles_started": "lightgbm_model_compiles_started_total",
    "compiled_models": "lightgbm_model_copies_compiled",
    "final_compiled_models": "lightgbm_model_copies_final_compiled",
}


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class MultiModelStore:
    def __init__(self, settings: ServingSettings, runtime: Runtime, handler_for: HandlerFor) -> None:
        """``handler_for``: which handler serves a model directory (the serving layer decides, as
        for the single model: :func:`..serving.handlers.handler_for`)."""
        if runtime.state_dir is None:
            raise RuntimeError("multi-model mode needs the shared state directory (serve sets it)")
        self.settings = settings
        self.runtime = runtime
        self.handler_for = handler_for
        self.models_dir = settings.paths.models
        self.budget = settings.model_cache_bytes
        self.registry = ModelRegistry(runtime.state_dir)
        self.extracted_dir = runtime.state_dir / "extracted"
        self.copies = WorkerCopies()
        self.metrics_dir = runtime.metrics_dir
        metrics.BUDGET_BYTES.set(self.budget)
        self.hot = None
        if settings.predictor_backend != "lightgbm":
            self.hot = HotCompiler(
                runtime.state_dir,
                settings.compile_cache_dir,
                settings.compile_timeout_seconds,
                settings.compile_memory_mb,
            )
        switcher().listeners.append(lambda _counts: self._publish_gauges())
        import lightgbm  # noqa: F401, PLC0415  # paid at start, not by the first cold load

        codecs.warm_up()
        log.info(
            "multi-model store: models under %s, budget %s per worker, shared state in %s",
            self.models_dir,
            _mb(self.budget),
            runtime.state_dir,
        )
        threading.Thread(target=self._sweep_forever, name="model-sweeper", daemon=True).start()

    # ------------------------------------------------------------------ routes' API

    def ready(self) -> str | None:
        return None  # healthy with no model loaded: SageMaker loads models after /ping

    def load(self, body: bytes) -> Entry:
        """``POST /models``: 409 if loaded, 404/400 for a bad url, 507 if it can never fit."""
        name, url = api.parse_load_request(body)
        path = resolve_model_url(self.models_dir, url)
        with self.registry.locked():
            if self.registry.get(name) is not None:
                raise Conflict(f"model {name!r} is already loaded; unload it first (DELETE /models/{name})", model=name)
            return self._load_locked(name, url, path)[0]

    def unload(self, name: str) -> None:
        """``DELETE /models/<name>``: frees this worker's copy now, the others' within a sweep."""
        with self.registry.locked():
            if not self.registry.remove(name):
                raise ModelNotFound(f"model {name!r} is not loaded", model=name)
        metrics.MODEL_UNLOADS.inc()
        self._drop_copy(name)
        self._publish_gauges()
        log.info("model unloaded: %s (registry in use %s)", name, _mb(self.registry.bytes_in_use()))

    def describe(self, name: str) -> dict[str, str]:
        entry = self.registry.get(name)
        if entry is None:
            raise ModelNotFound(f"model {name!r} is not loaded", model=name)
        return entry.public()

    def page(self, token: str | None, limit: str | None) -> dict[str, Any]:
        return api.page([entry for _, entry in self.registry.entries()], token, limit)

    def get(self, name: str) -> Served:
        """A model loaded through ``POST /models`` (``/models/<name>/invoke``)."""
        served = self._local_copy(name)
        if served is None:
            raise ModelNotFound(f"model {name!r} is not loaded; load it with POST /models", model=name)
        return served

    def model_for(self, target: str | None) -> Served:
        """The lazy path: ``/invocations`` with ``X-Amzn-SageMaker-Target-Model: <name>``."""
        if not target:
            raise BadRequest(
                "multi-model mode: name the model with the X-Amzn-SageMaker-Target-Model header "
                f"(a directory or .tar.gz archive under {self.models_dir})"
            )
        served = self._local_copy(target)
        if served is not None:
            return served
        path = resolve_model_path(self.models_dir, target)
        with self.registry.locked():
            if self.registry.get(target) is None:  # another worker may have loaded it meanwhile
                return self._load_locked(target, str(path), path)[1]
        served = self._local_copy(target)
        if served is None:  # unloaded again in the meantime
            raise ModelNotFound(f"model {target!r} was unloaded while loading; retry", model=target)
        return served

    def stats(self) -> dict[str, Any]:
        """The registry's view, and the workers' metrics summed (``GET /metrics`` has them all)."""
        self._publish_gauges()
        values = totals(self.metrics_dir)
        return {
            "models_loaded": len(self.registry.names()),
            "bytes_in_use": self.registry.bytes_in_use(),
            "budget_bytes_per_worker": self.budget,
            **{key: int(values.get(name, 0)) for key, name in STATS_METRICS.items()},
            "load_seconds": values.get("lightgbm_model_load_seconds_sum", 0.0),
        }

    # ------------------------------------------------------------------ loading

    def _model_dir(self, name: str, path: Path) -> Path:
        if is_archive(path):  # same archive -> same directory, whichever worker extracts it
            return extract_archive(path, self.extracted_dir / file_identity(path), self.settings.max_archive_bytes)
        if path.is_dir():
            # SageMaker extracts each model to <models>/<name>/model/: that is the model's directory
            # (its files, its code/), the one user code gets as model_dir. A `model` link is
            # followed only inside the models directory (confinement.py), like every link below it.
            entry = path / "model"
            if not os.path.lexists(entry):
                return path
            try:
                model = resolve_inside(self.models_dir, entry)
            except OutsideRoot:
                raise BadRequest(
                    f"model {name!r}: its model entry points outside the models directory {self.models_dir}; "
                    "every file of a model must be inside it",
                    model=name,
                ) from None
            except OSError as exc:
                raise BadRequest(f"model {name!r}: its model entry cannot be resolved: {exc}", model=name) from None
            return model if model.is_dir() else path
        raise BadRequest(f"model {name!r}: {path.name} is neither a directory nor a .tar.gz archive", model=name)

    def _read(self, name: str, model_dir: Path) -> tuple[Served, Path, int]:
        """Load a model with its handler: (served, the directory its files are in, its size).

        Its files must all lie inside the models directory, or inside the archive they were
        extracted from (every member of which was checked)."""
        root = self.extracted_dir if model_dir.is_relative_to(self.extracted_dir) else self.models_dir
        outside = first_link_outside(model_dir, root)
        if outside is not None:  # refused before any of the model's files is opened or its code imported
            raise BadRequest(
                f"model {name!r}: {outside.link.relative_to(root.resolve())} points outside the models "
                f"directory {root}; every file of a model must be inside it",
                model=name,
            )
        try:
            handler = self.handler_for(model_dir, self.settings, self.runtime, root, name)
            model = handler.load(model_dir)
        except (ModelLoadError, UserCodeSetupError) as exc:
            raise BadRequest(f"model {name!r} cannot be loaded: {exc}", model=name) from None
        except MemoryError:
            raise InsufficientStorage(f"model {name!r} does not fit in this worker's memory", model=name) from None
        model_file = getattr(model, "source_file", None)  # a pickle's, not the text derived from it
        if isinstance(model_file, Path) and model_file.is_file():
            return Served(handler, model), model_file.parent, model_file.stat().st_size
        files = [path for path in model_dir.rglob("*") if path.is_file()]
        return Served(handler, model), model_dir, sum(path.stat().st_size for path in files)

    def _load_locked(self, name: str, url: str, path: Path) -> tuple[Entry, Served]:
        """Load, make room (evicting least recently used), register. Caller holds the registry lock."""
        started = time.monotonic()
        served, files_dir, size = self._read(name, self._model_dir(name, path))
        if size > self.budget:
            raise InsufficientStorage(
                f"model {name!r} needs {_mb(size)} but the budget is {_mb(self.budget)} per worker "
                "(LIGHTGBM_MODEL_CACHE_MB)",
                model=name,
            )
        in_use = self.registry.bytes_in_use()
        for victim in self.registry.least_recently_used():
            if in_use + size <= self.budget:
                break
            self.registry.remove(victim.name)
            self._drop_copy(victim.name)
            in_use -= victim.size_bytes
            metrics.MODEL_EVICTIONS.inc()
            log.info("model evicted (least recently used): %s, freed %s", victim.name, _mb(victim.size_bytes))
        entry = self.registry.add(name, url, files_dir, size)
        elapsed = time.monotonic() - started
        self._keep(entry, served, elapsed)
        log.info(
            "model loaded: %s from %s (%s, %.1f ms, %s); registry in use %s of %s",
            name,
            url,
            _mb(size),
            elapsed * 1000,
            served.handler.description,
            _mb(in_use + size),
            _mb(self.budget),
        )
        self._publish_gauges()
        return entry, served

    def _local_copy(self, name: str) -> Served | None:
        """This worker's copy of a registered model (loaded on first use); None if not registered."""
        version = self.registry.version(name)  # the hot path: one stat, one utime
        if version is None:
            self._drop_copy(name)
            return None
        served = self.copies.get(name, version)
        if served is not None:
            metrics.model_hit()
            self.registry.touch(name)
            if self.hot is not None:
                self.hot.hit(name, served)
            return served
        # First use in this worker (or the model was reloaded): load our own copy, once.
        with self.copies.load_lock(name):
            current = self.registry.version(name)
            served = self.copies.get(name, current) if current is not None else None
            if served is not None:
                return served  # another thread of this worker loaded it meanwhile
            entry = self.registry.get(name)
            if entry is None:
                return None
            self._prune()
            started = time.monotonic()
            served = self._read(name, Path(entry.model_dir))[0]
            self._keep(entry, served, time.monotonic() - started)
        self.registry.touch(name)
        return served

    def _keep(self, entry: Entry, served: Served, seconds: float) -> None:
        version = self.registry.version(entry.name)
        if version is None:  # unloaded while we were loading: do not keep it
            return
        self.copies.keep(entry.name, version, served, entry.size_bytes)
        if self.hot is not None:
            self.hot.loaded(entry.name, served)
        metrics.MODEL_MISSES.inc()
        metrics.MODEL_LOADS.inc()
        metrics.MODEL_LOAD_SECONDS.observe(seconds)

    # ------------------------------------------------------------------ background

    def _drop_copy(self, name: str) -> None:
        self.copies.drop(name)
        if self.hot is not None:
            self.hot.dropped(name)

    def _prune(self) -> None:
        for name in self.copies.prune(self.registry.version):
            if self.hot is not None:
                self.hot.dropped(name)

    def _publish_gauges(self) -> None:
        """This worker's copies, and the shared registry, as the metrics' gauges."""
        copies, copy_bytes = self.copies.footprint()
        metrics.MODEL_COPIES.set(copies)
        metrics.MODEL_COPY_BYTES.set(copy_bytes)
        metrics.MODELS_REGISTERED.set(len(self.registry.names()))
        metrics.REGISTRY_BYTES.set(self.registry.bytes_in_use())
        if self.hot is not None:
            compiled, final = self.hot.compiled_copies([served for _, served in self.copies.items()])
            metrics.MODELS_COMPILED.set(compiled)
            metrics.MODELS_FINAL_COMPILED.set(final)

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            try:
                self._prune()
                if self.hot is not None:
                    self.hot.sweep(self.copies.items())
                self._publish_gauges()
            except Exception:  # the sweeper must never die; the request path re-checks anyway
                log.exception("model sweeper failed")
