"""Multi-model mode: SageMaker's /models API and lazy TargetModel loading, one store.

Shared truth lives in the :class:`ModelRegistry` (files + lock, see there); each worker keeps
its own least-recently-used cache of loaded models and checks it against the registry on
every request (one small file read), so a model loaded, reloaded or unloaded through any
worker is seen the same way by all. A background sweeper frees, within half a second, the
copies of models that another worker unloaded or evicted, and publishes this worker's
counters for ``GET /stats``.

Memory: every worker may hold every registered model, so the budget
(``LIGHTGBM_MODEL_CACHE_MB``, default from the container's memory limit and the number of
workers) bounds the registry's total, and each worker holds a subset of the registry.
A model's size is its model file's size (LightGBM's in-memory forest is about that size).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .archives import extract_archive, is_archive, resolve_model_path, resolve_model_url
from .codecs import warm_up
from .errors import BadRequest, Conflict, InsufficientStorage, ModelNotFound
from .model import LoadedModel, ModelLoadError, load_model
from .model_registry import Entry, ModelRegistry
from .settings import ServingSettings

log = logging.getLogger(__name__)

SWEEP_SECONDS = 0.5
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


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


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class MultiModelStore:
    def __init__(self, settings: ServingSettings) -> None:
        if settings.state_dir is None:
            raise RuntimeError("multi-model mode needs LIGHTGBM_STATE_DIR (set by serve)")
        self.settings = settings
        self.models_dir = settings.paths.models
        self.budget = settings.model_cache_bytes
        self.registry = ModelRegistry(settings.state_dir)
        self.extracted_dir = settings.state_dir / "extracted"
        self.workers_dir = settings.state_dir / "workers"
        self.workers_dir.mkdir(parents=True, exist_ok=True)
        # name -> (registry version, model, size)
        self.local: OrderedDict[str, tuple[tuple[int, int], LoadedModel, int]] = OrderedDict()
        self.local_lock = threading.Lock()
        self.load_locks: dict[str, threading.Lock] = {}  # one load per model per worker, however many threads ask
        self.counters = Counters()
        import lightgbm  # noqa: F401  # paid at start, not by the first cold load

        warm_up()
        log.info(
            "multi-model store: models under %s, budget %s per worker, shared state in %s",
            self.models_dir, _mb(self.budget), settings.state_dir,
        )  # fmt: skip
        threading.Thread(target=self._sweep_forever, name="model-sweeper", daemon=True).start()

    # ------------------------------------------------------------------ routes' API

    def ready(self) -> bool:
        return True

    def load(self, name: str, url: str) -> Entry:
        """``POST /models``: 409 if loaded, 404/400 for a bad url, 507 if it can never fit."""
        if not isinstance(name, str) or not name:
            raise BadRequest('"model_name" must be a non-empty string')
        if not isinstance(url, str):
            raise BadRequest('"url" must be the path of the model directory or archive')
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
        self.counters.unloads += 1
        self._drop_local(name)
        self._publish_counters()
        log.info("model unloaded: %s (registry in use %s)", name, _mb(self.registry.bytes_in_use()))

    def describe(self, name: str) -> dict[str, str]:
        entry = self.registry.get(name)
        if entry is None:
            raise ModelNotFound(f"model {name!r} is not loaded", model=name)
        return entry.public()

    def page(self, token: str | None, limit: str | None) -> dict[str, Any]:
        """``GET /models``: sorted by name; ``nextPageToken`` is the offset of the next page."""
        try:
            size = int(limit) if limit else DEFAULT_PAGE_SIZE
            start = int(token) if token else 0
        except ValueError:
            raise BadRequest("limit and next_page_token must be whole numbers") from None
        if not 1 <= size <= MAX_PAGE_SIZE or start < 0:
            raise BadRequest(f"limit must be between 1 and {MAX_PAGE_SIZE} and next_page_token >= 0")
        entries = sorted((entry for _, entry in self.registry.entries()), key=lambda e: e.name)
        body: dict[str, Any] = {"models": [entry.public() for entry in entries[start : start + size]]}
        if start + size < len(entries):
            body["nextPageToken"] = str(start + size)
        return body

    def get(self, name: str) -> LoadedModel:
        """A model loaded through ``POST /models`` (``/models/<name>/invoke``)."""
        model = self._local_copy(name)
        if model is None:
            raise ModelNotFound(f"model {name!r} is not loaded; load it with POST /models", model=name)
        return model

    def model_for(self, target: str | None) -> LoadedModel:
        """The lazy path: ``/invocations`` with ``X-Amzn-SageMaker-Target-Model: <name>``."""
        if not target:
            raise BadRequest(
                "multi-model mode: name the model with the X-Amzn-SageMaker-Target-Model header "
                f"(a directory or .tar.gz archive under {self.models_dir})"
            )
        model = self._local_copy(target)
        if model is not None:
            return model
        path = resolve_model_path(self.models_dir, target)
        with self.registry.locked():
            if self.registry.get(target) is None:  # another worker may have loaded it meanwhile
                return self._load_locked(target, str(path), path)[1]
        model = self._local_copy(target)
        if model is None:  # unloaded again in the meantime
            raise ModelNotFound(f"model {target!r} was unloaded while loading; retry", model=target)
        return model

    def stats(self) -> dict[str, Any]:
        """Every live worker's counters, summed, plus the registry's view."""
        self._publish_counters()
        totals: dict[str, float] = {}
        workers = 0
        for path in self.workers_dir.glob("*.json"):
            pid = int(path.stem)
            if not _alive(pid):
                path.unlink(missing_ok=True)
                continue
            try:
                counters = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            workers += 1
            for key, value in counters.items():
                totals[key] = totals.get(key, 0) + value
        return {
            "models_loaded": len(self.registry.names()),
            "bytes_in_use": self.registry.bytes_in_use(),
            "budget_bytes_per_worker": self.budget,
            "workers": workers,
            **totals,
        }

    # ------------------------------------------------------------------ internals

    def _model_dir(self, name: str, path: Path) -> Path:
        if is_archive(path):
            stat = path.stat()
            # Same archive (path, size, mtime) -> same directory, whichever worker extracts it.
            key = hashlib.sha256(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()).hexdigest()[:32]
            return extract_archive(path, self.extracted_dir / key, self.settings.max_archive_bytes)
        if path.is_dir():
            return path
        raise BadRequest(f"model {name!r}: {path.name} is neither a directory nor a .tar.gz archive", model=name)

    def _read(self, name: str, model_dir: Path) -> LoadedModel:
        """Load a model's files, which must all lie inside the models directory, or inside
        the archive they were extracted from (every member of which was checked)."""
        root = self.extracted_dir if model_dir.is_relative_to(self.extracted_dir) else self.models_dir
        try:
            return load_model(model_dir, self.settings.predict_threads, root=root)
        except ModelLoadError as exc:
            raise BadRequest(f"model {name!r} cannot be loaded: {exc}", model=name) from None
        except MemoryError:
            raise InsufficientStorage(f"model {name!r} does not fit in this worker's memory", model=name) from None

    def _load_locked(self, name: str, url: str, path: Path) -> tuple[Entry, LoadedModel]:
        """Load, make room (evicting least recently used), register. Caller holds the registry lock."""
        started = time.monotonic()
        model_dir = self._model_dir(name, path)
        model = self._read(name, model_dir)
        size = model.model_file.stat().st_size
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
            self._drop_local(victim.name)
            in_use -= victim.size_bytes
            self.counters.evictions += 1
            log.info("model evicted (least recently used): %s, freed %s", victim.name, _mb(victim.size_bytes))
        entry = self.registry.add(name, url, model.model_file.parent, size)
        elapsed = time.monotonic() - started
        self._keep_local(entry, model, elapsed)
        log.info(
            "model loaded: %s from %s (%s, %.1f ms); registry in use %s of %s",
            name, url, _mb(size), elapsed * 1000, _mb(in_use + size), _mb(self.budget),
        )  # fmt: skip
        self._publish_counters()  # loads and evictions show in /stats at once; hits within a sweep
        return entry, model

    def _local_copy(self, name: str) -> LoadedModel | None:
        """This worker's copy of a registered model (loaded on first use); None if not registered."""
        version = self.registry.version(name)  # the hot path: one stat, one utime
        if version is None:
            self._drop_local(name)
            return None
        with self.local_lock:
            cached = self.local.get(name)
            if cached is not None and cached[0] == version:
                self.local.move_to_end(name)
                self.counters.hits += 1
                self.registry.touch(name)
                return cached[1]
        # First use in this worker (or the model was reloaded): load our own copy, once.
        with self.local_lock:
            load_lock = self.load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self.local_lock:
                cached = self.local.get(name)
            if cached is not None and cached[0] == self.registry.version(name):
                return cached[1]  # another thread of this worker loaded it meanwhile
            entry = self.registry.get(name)
            if entry is None:
                return None
            self._prune_local()
            started = time.monotonic()
            model = self._read(name, Path(entry.model_dir))
            self._keep_local(entry, model, time.monotonic() - started)
        self.registry.touch(name)
        return model

    def _keep_local(self, entry: Entry, model: LoadedModel, seconds: float) -> None:
        version = self.registry.version(entry.name)
        if version is None:  # unloaded while we were loading: do not keep it
            return
        with self.local_lock:
            self.local[entry.name] = (version, model, entry.size_bytes)
            self.local.move_to_end(entry.name)
            self.counters.misses += 1
            self.counters.loads += 1
            self.counters.load_seconds += seconds

    def _drop_local(self, name: str) -> None:
        with self.local_lock:
            self.local.pop(name, None)

    def _prune_local(self) -> None:
        """Drop copies of models the registry no longer has (or has reloaded since)."""
        with self.local_lock:
            held = [(name, version) for name, (version, _, _) in self.local.items()]
        stale = [name for name, version in held if self.registry.version(name) != version]
        with self.local_lock:
            for name in stale:
                self.local.pop(name, None)

    def _publish_counters(self) -> None:
        with self.local_lock:
            self.counters.local_models = len(self.local)
            self.counters.local_bytes = sum(size for _, _, size in self.local.values())
            snapshot = asdict(self.counters)
        path = self.workers_dir / f"{os.getpid()}.json"
        staged = path.with_suffix(f".{threading.get_ident()}.tmp")  # the sweeper and request threads both publish
        staged.write_text(json.dumps(snapshot))
        os.replace(staged, path)

    def _sweep_forever(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            try:
                self._prune_local()
                self._publish_counters()
            except Exception:  # the sweeper must never die; the request path re-checks anyway
                log.exception("model sweeper failed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

