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
unloaded or evicted, gives their memory back to the system (``malloc_trim``; a compiled
copy's LLVM engine unmaps its code when it is dropped), and refreshes this worker's gauges
and per-model figures (:mod:`..observability.metrics`, :mod:`.usage`; ``GET /stats`` is a
view of the same numbers).

Memory: every worker may hold every registered model, so the budget
(``LIGHTGBM_MODEL_CACHE_MB``, per worker; default from the container's memory limit and the
number of workers) bounds the registry's total, and each worker holds a subset of the
registry. A model's size is *measured*: what the worker that loaded it took in memory while
loading (:func:`..heap.heap_in_use`: a Booster, its categories, a user's ``model_fn``
objects), plus what its compiled trees took once a worker switched to them (an LLVM engine
and its code: about three times the object file). So the budget means the memory the models
take in each worker, not their files' size.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector

from .. import codecs, slow_work
from ..builtin.handler import BuiltinOptions, LightGBMHandler
from ..compilation.switch import switcher
from ..confinement import OutsideRoot, first_link_outside, resolve_inside
from ..contract.handler import Handler, Served
from ..errors import BadRequest, Conflict, InsufficientStorage, ModelNotFound, UserCodeSetupError
from ..heap import heap_in_use, release_freed_memory
from ..model.files import ModelLoadError, file_identity
from ..observability import metrics
from ..observability.exposition import totals
from ..safe_tar import extract_archive, is_archive
from ..settings import Runtime, ServingSettings
from . import api
from .archives import resolve_model_path, resolve_model_url
from .hot_compile import HotCompiler
from .registry import Entry, ModelRegistry
from .usage import ModelUsageCollector, UsageFiles
from .worker_copies import WorkerCopies

log = logging.getLogger(__name__)

SWEEP_SECONDS = 0.5
#: A load measured below this (another thread freed memory meanwhile) counts as this much.
SMALLEST_MODEL_BYTES = 64 * 1024
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
    "worker_heap_bytes": "lightgbm_worker_heap_bytes",
    "compiles_started": "lightgbm_model_compiles_started_total",
    "compiled_models": "lightgbm_model_copies_compiled",
    "final_compiled_models": "lightgbm_model_copies_final_compiled",
}


@dataclass(frozen=True)
class Loaded:
    """A model just loaded by this worker, and what that took."""

    served: Served
    files_dir: Path  # where its files are (an extracted archive's directory, a pickle's own)
    size: int  # bytes it took in this worker's memory (measured)
    seconds: float


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
        self.usage = UsageFiles(runtime.state_dir)
        self.collectors: list[Collector] = [ModelUsageCollector(self.usage, self._last_used)]
        self.metrics_dir = runtime.metrics_dir
        self._freed = threading.Event()  # copies were dropped: the sweeper gives their memory back
        self._loading = threading.Lock()  # one load at a time in this worker: each measures its own memory
        metrics.BUDGET_BYTES.set(self.budget)
        self.hot = None
        if settings.predictor_backend != "lightgbm":
            self.hot = HotCompiler(
                runtime.state_dir,
                settings.compile_cache_dir,
                settings.compile_timeout_seconds,
                settings.compile_memory_mb,
                self._switched,
            )
        switcher().listeners.append(lambda _counts: self._publish_gauges())
        codecs.warm_up()
        self._warm_up_loading()
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
        if self.registry.get(name) is not None:
            raise Conflict(f"model {name!r} is already loaded; unload it first (DELETE /models/{name})", model=name)
        slow_work.starting()
        loaded = self._read_alone(name, path)
        with self.registry.locked():
            if self.registry.get(name) is not None:  # loaded through another worker meanwhile
                raise Conflict(f"model {name!r} is already loaded; unload it first (DELETE /models/{name})", model=name)
            return self._register_locked(name, url, loaded)

    def unload(self, name: str) -> None:
        """``DELETE /models/<name>``: frees this worker's copy now, the others' within a sweep."""
        with self.registry.locked():
            if not self.registry.remove(name):
                raise ModelNotFound(f"model {name!r} is not loaded", model=name)
        metrics.MODEL_UNLOADS.inc()
        self._drop_copy(name)
        self._publish_gauges()
        log.info("model unloaded: %s (registry in use %s)", name, _mb(self.registry.bytes_in_use()))

    def describe(self, name: str) -> dict[str, Any]:
        """``GET /models/<name>``: SageMaker's description, and what the model costs and does."""
        registered = self.registry.registered(name)
        if registered is None:
            raise ModelNotFound(f"model {name!r} is not loaded", model=name)
        return api.described(registered, self.usage.read().get(name))

    def page(self, token: str | None, limit: str | None) -> dict[str, Any]:
        return api.page(self.registry.names(), self.registry.registered, self.usage.read(), token, limit)

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
        slow_work.starting()  # loaded models keep answering on another thread meanwhile
        with self.copies.load_lock(target):  # one load of a name per worker, however many threads ask
            if self.registry.version(target) is None:  # nor did another worker register it meanwhile
                loaded = self._read_alone(target, path)
                with self.registry.locked():
                    if self.registry.get(target) is None:
                        self._register_locked(target, str(path), loaded)
                        return loaded.served
                entry = self.registry.get(target)  # registered by another worker while we read it
                if entry is not None and entry.url == str(path):  # the same files: ours is a copy of it
                    self._keep(entry, loaded)
                    return loaded.served
        served = self._local_copy(target)
        if served is None:  # unloaded again in the meantime
            raise ModelNotFound(f"model {target!r} was unloaded while loading; retry", model=target)
        return served

    def stats(self) -> dict[str, Any]:
        """The registry's view, and the workers' metrics summed (``GET /metrics`` has them all)."""
        self._publish_gauges()
        values = totals(self.metrics_dir)
        registered = self.registry.entries()
        return {
            "models_loaded": len(registered),
            "bytes_in_use": sum(item.bytes for item in registered),
            "budget_bytes_per_worker": self.budget,
            **{key: int(values.get(name, 0)) for key, name in STATS_METRICS.items()},
            "load_seconds": values.get("lightgbm_model_load_seconds_sum", 0.0),
        }

    # ------------------------------------------------------------------ loading

    def _warm_up_loading(self) -> None:
        """Load a one-tree model once, at start: the first load in a worker pays one-time costs
        (modules imported on first use, LightGBM's first Booster: 0.2-0.8 MB measured), which
        would otherwise be charged to the first real model's measured size, and its time to
        the first caller's cold load."""
        import lightgbm  # noqa: PLC0415 - the store's own dependency, like the handler's

        directory = Path(tempfile.mkdtemp(prefix="warm-up-", dir=self.runtime.state_dir))
        try:
            rows = [[float(i % 3), float(i % 5)] for i in range(20)]
            data = lightgbm.Dataset(rows, label=[row[0] for row in rows], params={"verbosity": -1})
            lightgbm.train({"verbosity": -1, "min_data_in_leaf": 1}, data, 1).save_model(directory / "model.txt")
            # The built-in handler itself, never handler_for: a user's model_fn must not see this model.
            options = BuiltinOptions(self.settings.predict_threads, max_values=1, derived_dir=directory, root=directory)
            LightGBMHandler(options).load(directory)
        except Exception:  # only a head start: a real load reports its own problems
            log.debug("warming up model loading failed", exc_info=True)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

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

    def _read_alone(self, name: str, path: Path) -> Loaded:
        """:meth:`_read` the model at ``path`` while no other thread of this worker loads one.

        Outside the registry lock, so workers load in parallel and hot requests never wait
        for a load's parsing; one at a time within a worker, so each load's measured memory is
        its own (concurrent requests' allocations are short-lived)."""
        with self._loading:
            return self._read(name, self._model_dir(name, path))

    def _read(self, name: str, model_dir: Path) -> Loaded:
        """Load a model with its handler, measuring what it took in this worker's memory.

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
        started = time.monotonic()
        before = heap_in_use()
        try:
            handler = self.handler_for(model_dir, self.settings, self.runtime, root, name)
            model = handler.load(model_dir)
        except (ModelLoadError, UserCodeSetupError) as exc:
            raise BadRequest(f"model {name!r} cannot be loaded: {exc}", model=name) from None
        except MemoryError:
            raise InsufficientStorage(f"model {name!r} does not fit in this worker's memory", model=name) from None
        size = max(heap_in_use() - before, SMALLEST_MODEL_BYTES)
        seconds = time.monotonic() - started
        model_file = getattr(model, "source_file", None)  # a pickle's, not the text derived from it
        if isinstance(model_file, Path) and model_file.is_file():
            return Loaded(Served(handler, model), model_file.parent, size, seconds)
        return Loaded(Served(handler, model), model_dir, size, seconds)

    def _register_locked(self, name: str, url: str, loaded: Loaded) -> Entry:
        """Make room (evicting least recently used), register, keep as this worker's copy.
        Caller holds the registry lock."""
        if loaded.size > self.budget:
            raise InsufficientStorage(
                f"model {name!r} takes {_mb(loaded.size)} in memory once loaded but the budget is "
                f"{_mb(self.budget)} per worker (LIGHTGBM_MODEL_CACHE_MB)",
                model=name,
            )
        in_use, held = self._make_room(name, loaded.size)
        entry = self.registry.add(name, url, loaded.files_dir, loaded.size, loaded.seconds)
        self._keep(entry, loaded)
        metrics.MODELS_REGISTERED.set(held + 1)  # at once, from what making room counted (the sweeper recounts)
        metrics.REGISTRY_BYTES.set(in_use + loaded.size)
        log.info(
            "model loaded: %s from %s (%s in memory, %.1f ms, %s); registry in use %s of %s",
            name,
            url,
            _mb(loaded.size),
            loaded.seconds * 1000,
            loaded.served.handler.description,
            _mb(in_use + loaded.size),
            _mb(self.budget),
        )
        return entry

    def _make_room(self, name: str, size: int) -> tuple[int, int]:
        """Evict the least recently used models until ``size`` more bytes fit; returns the bytes
        and the models the registry holds then. Caller holds the registry lock."""
        registered = self.registry.least_recently_used()
        in_use = sum(item.bytes for item in registered)
        now = time.time()
        evicted = 0
        for victim in registered:
            if in_use + size <= self.budget:
                break
            self.registry.remove(victim.entry.name)
            self._drop_copy(victim.entry.name)
            metrics.MODEL_EVICTIONS.inc()
            log.info(
                "model evicted: %s (least recently used, idle %.1f s; %s freed for %s, which needs %s: "
                "in use %s of the %s budget)",
                victim.entry.name,
                now - victim.last_used,
                _mb(victim.bytes),
                name,
                _mb(size),
                _mb(in_use),
                _mb(self.budget),
            )
            in_use -= victim.bytes
            evicted += 1
        return in_use, len(registered) - evicted

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
        slow_work.starting()
        with self.copies.load_lock(name):
            current = self.registry.version(name)
            served = self.copies.get(name, current) if current is not None else None
            if served is not None:
                return served  # another thread of this worker loaded it meanwhile
            entry = self.registry.get(name)
            if entry is None:
                return None
            self._prune()
            with self._loading:
                loaded = self._read(name, Path(entry.model_dir))
            self._keep(entry, loaded)
        self.registry.touch(name)
        return loaded.served

    def _keep(self, entry: Entry, loaded: Loaded) -> None:
        version = self.registry.version(entry.name)
        if version is None:  # unloaded while we were loading: do not keep it
            return
        self.copies.keep(entry.name, version, loaded.served, loaded.size, loaded.seconds)
        self.usage.publish(self.copies.usage())  # a new copy is in GET /models at once, not a sweep later
        if self.hot is not None:
            self.hot.loaded(entry.name, loaded.served)
        metrics.MODEL_MISSES.inc()
        metrics.MODEL_LOADS.inc()
        metrics.MODEL_LOAD_SECONDS.observe(loaded.seconds)

    # ------------------------------------------------------------------ background

    def _switched(self, name: str, served: Served, size: int) -> None:
        """This worker's copy of ``name`` switched to compiled trees that took ``size`` bytes."""
        if self.copies.compiled(name, served, size):
            self.registry.note_compiled_bytes(name, size)

    def _last_used(self) -> dict[str, float]:
        return {item.entry.name: item.last_used for item in self.registry.entries()}

    def _drop_copy(self, name: str) -> None:
        if self.copies.drop(name):
            self._freed.set()
        if self.hot is not None:
            self.hot.dropped(name)

    def _prune(self) -> None:
        for name in self.copies.prune(self.registry.version):
            self._freed.set()
            if self.hot is not None:
                self.hot.dropped(name)

    def _publish_gauges(self) -> None:
        """This worker's copies, and the shared registry, as the metrics' gauges."""
        copies, copy_bytes = self.copies.footprint()
        metrics.MODEL_COPIES.set(copies)
        metrics.MODEL_COPY_BYTES.set(copy_bytes)
        registered = self.registry.entries()
        metrics.MODELS_REGISTERED.set(len(registered))
        metrics.REGISTRY_BYTES.set(sum(item.bytes for item in registered))
        metrics.WORKER_HEAP_BYTES.set(heap_in_use())
        if self.hot is not None:
            compiled, final = self.hot.compiled_copies([served for _, served in self.copies.items()])
            metrics.MODELS_COMPILED.set(compiled)
            metrics.MODELS_FINAL_COMPILED.set(final)

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            try:
                self._prune()
                if self._freed.is_set():  # after the copies' last references went with the requests using them
                    self._freed.clear()
                    release_freed_memory()
                if self.hot is not None:
                    self.hot.sweep(self.copies.items())
                self._publish_gauges()
                self.usage.publish(self.copies.usage())
            except Exception:  # the sweeper must never die; the request path re-checks anyway
                log.exception("model sweeper failed")
