"""The background compile job's state as Prometheus metrics, read from its status file at scrape time.

The job is a separate program, not a worker, so its state is not in the workers' metric
files; whichever worker answers ``GET /metrics`` adds this collector (:mod:`..serving.app`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .status import COMPILING, FAILED, READY, read_status


class CompileJobCollector(Collector):
    """The background compile job's state, from its status file."""

    def __init__(self, status_file: Path) -> None:
        self.status_file = status_file

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = read_status(self.status_file)
        if status is None:
            return
        state = GaugeMetricFamily(
            "lightgbm_compile_state", "The compile job's state (1 for the current one).", labels=["state"]
        )
        for name in (COMPILING, READY, FAILED):
            state.add_metric([name], int(status.state == name))
        yield state
        yield GaugeMetricFamily(
            "lightgbm_compile_final",
            "1 once the compile job made its last object (or failed).",
            value=int(status.finished),
        )
        if status.seconds is not None:
            yield GaugeMetricFamily(
                "lightgbm_compile_duration_seconds",
                "How long the compile job took to its latest object.",
                value=status.seconds,
            )
