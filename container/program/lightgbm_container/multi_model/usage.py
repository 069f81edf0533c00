"""What each model costs and how it is used, across every worker: for ``GET /models`` and ``/metrics``.

Each worker knows its own copies (:mod:`.worker_copies`); any worker may answer the operator.
So every worker publishes its copies' figures (measured bytes, load time, hits) to a file of
its own, ``<state>/usage/<pid>.json``, from its sweeper (every half second, only when they
changed): nothing on the request path. A reader sums the files of live workers; a worker
that exited leaves a file behind that is skipped (its pid is gone) and removed by the next
publication of any worker.

In Prometheus these are per-model series, so their number follows the models *held*, never
the models on disk, and an unloaded model's series disappear (a collector read at scrape
time, not multiprocess metric files, which keep every label value they ever saw).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..atomic_files import write_atomically


@dataclass
class ModelUsage:
    """One model over every worker that holds a copy."""

    copies: int = 0
    bytes: int = 0  # summed over the copies: what the model takes in the whole server
    compiled_copies: int = 0
    hits: int = 0
    load_seconds: float = 0.0  # the slowest copy's load
    loaded_at: float = field(default=0.0)  # the earliest copy's

    def add(self, copy: Mapping[str, float]) -> None:
        self.copies += 1
        self.bytes += int(copy["bytes"])
        self.compiled_copies += 1 if copy["compiled_bytes"] else 0
        self.hits += int(copy["hits"])
        self.load_seconds = max(self.load_seconds, float(copy["load_seconds"]))
        self.loaded_at = min(self.loaded_at or float(copy["loaded_at"]), float(copy["loaded_at"]))


class UsageFiles:
    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "usage"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._published: bytes | None = None
        self._summed: tuple[tuple[tuple[int, int, int], ...], dict[str, ModelUsage]] | None = None

    def publish(self, copies: Mapping[str, Mapping[str, float]]) -> None:
        """This worker's copies, as :meth:`.WorkerCopies.usage` gives them (written when changed)."""
        text = orjson.dumps(copies)
        if text == self._published:
            return
        write_atomically(self.directory / f"{os.getpid()}.json", text)
        self._published = text
        for pid, path in self._files():
            if not _alive(pid):
                path.unlink(missing_ok=True)

    def read(self) -> dict[str, ModelUsage]:
        """Every live worker's copies, summed by model name (summed again only when a worker
        published since: a file is replaced, never rewritten, so its inode, time and size say
        which version it is)."""
        files = []
        for pid, path in self._files():
            if not _alive(pid):
                continue
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            files.append(((stat.st_ino, stat.st_mtime_ns, stat.st_size), path))
        key = tuple(sorted(identity for identity, _ in files))
        if self._summed is not None and self._summed[0] == key:
            return self._summed[1]
        models: dict[str, ModelUsage] = {}
        for _, path in files:
            try:
                copies = orjson.loads(path.read_bytes())
            except (FileNotFoundError, orjson.JSONDecodeError):
                continue  # replaced while we read, or its worker is gone
            for name, copy in copies.items():
                models.setdefault(name, ModelUsage()).add(copy)
        self._summed = (key, models)
        return models

    def _files(self) -> Iterator[tuple[int, Path]]:
        for path in self.directory.glob("*.json"):
            if path.stem.isdigit():
                yield int(path.stem), path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelUsageCollector(Collector):
    """``/metrics``: one series per loaded model and figure, read from the workers' files at scrape time."""

    def __init__(self, files: UsageFiles, last_used: Callable[[], Mapping[str, float]]) -> None:
        """``last_used``: model name -> when any worker last used it (the registry's shared order)."""
        self.files = files
        self.last_used = last_used

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        models = self.files.read()
        size = GaugeMetricFamily(
            "lightgbm_model_bytes",
            "Memory a loaded model takes, measured in each worker at load and at its switch to "
            "compiled trees, summed over the workers holding a copy.",
            labels=["model"],
        )
        copies = GaugeMetricFamily(
            "lightgbm_model_worker_copies", "Workers holding a copy of the model.", labels=["model"]
        )
        hits = CounterMetricFamily(
            "lightgbm_model_requests",
            "Requests the model's copies answered since they were loaded.",
            labels=["model"],
        )
        load = GaugeMetricFamily(
            "lightgbm_model_load_duration_seconds", "The slowest worker's load of its copy.", labels=["model"]
        )
        used = GaugeMetricFamily(
            "lightgbm_model_last_used_timestamp_seconds",
            "When a request last used the model (Unix time), in any worker.",
            labels=["model"],
        )
        last_used = self.last_used()
        for name, usage in sorted(models.items()):
            size.add_metric([name], usage.bytes)
            copies.add_metric([name], usage.copies)
            hits.add_metric([name], usage.hits)
            load.add_metric([name], usage.load_seconds)
            if name in last_used:
                used.add_metric([name], last_used[name])
        yield from (size, copies, hits, load, used)
