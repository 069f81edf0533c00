"""``GET /metrics`` (Prometheus text) and the sums ``GET /stats`` shows: one source for both.

In ``serve`` every worker writes its metrics to its own files in the metrics directory;
prometheus-client's :class:`MultiProcessCollector` merges them here, in whichever worker
answers the scrape. Programs that are not workers (the background compile job) add a
collector of their own (:class:`..compilation.metrics.CompileJobCollector`), read at scrape time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from . import metrics

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def _registry(metrics_dir: Path | None, others: Sequence[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry()
    if metrics_dir is None:  # one process: its own metrics (a registry is a collector too)
        registry.register(metrics.REGISTRY)
    else:
        MultiProcessCollector(registry, str(metrics_dir))
    for collector in others:
        registry.register(collector)
    return registry


def metrics_text(metrics_dir: Path | None, others: Sequence[Collector] = ()) -> bytes:
    """Every process' metrics, merged, in Prometheus' text format (this process's pending
    updates published first; other workers' are at most ``batching.PUBLISH_SECONDS`` behind),
    with ``others``: collectors of programs that are not workers (the compile job's state)."""
    metrics.publish()
    return generate_latest(_registry(metrics_dir, others))


def totals(metrics_dir: Path | None) -> dict[str, float]:
    """The merged samples as ``{name: value}``, label values folded into the name
    (``lightgbm_workers_predicting:compiled``): what ``/stats`` reads."""
    metrics.publish()
    values: dict[str, float] = {}
    for family in _registry(metrics_dir).collect():
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            name = sample.name + "".join(f":{value}" for value in sample.labels.values())
            values[name] = values.get(name, 0.0) + sample.value
    return values
