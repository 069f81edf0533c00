"""``GET /metrics`` (Prometheus text) and the sums ``GET /stats`` shows: one source for both.

In ``serve`` every worker writes its metrics to its own files in the metrics directory;
prometheus-client's :class:`MultiProcessCollector` merges them here, in whichever worker
answers the scrape. The background compile job is a separate program that writes one
status file (:mod:`..compilation.status`); its state is read from that file at scrape time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from ..compilation.status import COMPILING, FAILED, READY, read_status
from . import metrics

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class CompileJobCollector(Collector):
    """The background compile job's state, from its status file."""

    def __init__(self, status_file: Path) -> None:
        self.status_file = status_file

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = read_status(self.status_file)
        if status is None:
            return
        state = GaugeMetricFamily("lightgbm_compile_state", "The compile job's state (1 for the current one).", labels=["state"])
        for name in (COMPILING, READY, FAILED):
            state.add_metric([name], int(status.state == name))
        yield state
        yield GaugeMetricFamily(
            "lightgbm_compile_final", "1 once the compile job made its last object (or failed).", value=int(status.finished)
        )
        if status.seconds is not None:
            yield GaugeMetricFamily(
                "lightgbm_compile_duration_seconds", "How long the compile job took to its latest object.", value=status.seconds
            )


def _registry(metrics_dir: Path | None, compile_status: Path | None) -> CollectorRegistry:
    registry = CollectorRegistry()
    if metrics_dir is None:  # one process: its own metrics (a registry is a collector too)
        registry.register(metrics.REGISTRY)
    else:
        MultiProcessCollector(registry, str(metrics_dir))
    if compile_status is not None:
        registry.register(CompileJobCollector(compile_status))
    return registry


def metrics_text(metrics_dir: Path | None, compile_status: Path | None = None) -> bytes:
    """Every process' metrics, merged, in Prometheus' text format (this process's pending
    updates published first; other workers' are at most ``batching.PUBLISH_SECONDS`` behind)."""
    metrics.publish()
    return generate_latest(_registry(metrics_dir, compile_status))


def totals(metrics_dir: Path | None) -> dict[str, float]:
    """The merged samples as ``{name: value}``, label values folded into the name
    (``lightgbm_workers_predicting:compiled``): what ``/stats`` reads."""
    metrics.publish()
    values: dict[str, float] = {}
    for family in _registry(metrics_dir, None).collect():
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")):
                continue
            name = sample.name + "".join(f":{value}" for value in sample.labels.values())
            values[name] = values.get(name, 0.0) + sample.value
    return values
