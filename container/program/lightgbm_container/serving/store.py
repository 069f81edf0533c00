"""Model stores answer "which model, and which handler, serves this request".

Single-model mode has exactly one model, loaded before the worker accepts traffic, so
``/ping`` answers without doing any work. If loading fails (a user's ``model_fn`` that
raises), the worker stays up and says why: ``/ping`` answers 503 with the reason rather than
letting gunicorn restart the worker in a loop. Multi-model mode: :mod:`..multi_model`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Protocol

from prometheus_client.registry import Collector

from .. import codecs
from ..compilation.status import read_status
from ..compilation.switch import SwitchCounts, switcher
from ..contract.handler import Served
from ..errors import ModelUnavailable
from ..multi_model.store import MultiModelStore
from ..observability import metrics
from ..observability.exposition import totals
from ..settings import Runtime, ServingSettings
from .handlers import handler_for

log = logging.getLogger(__name__)


class ModelStore(Protocol):
    """What the HTTP layer needs from a store, in either mode."""

    #: ``/metrics`` collectors read at scrape time (multi-model: each loaded model's figures).
    collectors: list[Collector]

    def ready(self) -> str | None:
        """None when ready, else why not (``/ping`` answers 503 with it)."""
        ...

    def model_for(self, target: str | None) -> Served: ...

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: the workers' metrics, summed (a view of ``GET /metrics``)."""
        ...


class SingleModelStore:
    def __init__(self, settings: ServingSettings, runtime: Runtime) -> None:
        model_dir = settings.paths.model
        handler = handler_for(model_dir, settings, runtime)
        self.served: Served | None = None
        self.problem: str | None = None
        self.collectors: list[Collector] = []
        try:
            self.served = Served(handler, handler.load(model_dir))
        except Exception as exc:
            log.exception("loading the model with the %s handler failed", handler.description)
            self.problem = f"the model could not be loaded ({handler.description}): {type(exc).__name__}: {exc}"
        codecs.warm_up()
        if self.served is not None:
            describe = getattr(self.served.model, "describe", None)
            log.info(
                "model loaded (%s): %s",
                handler.description,
                describe() if describe else type(self.served.model).__name__,
            )
        self.compile_status = runtime.compile_status
        self.metrics_dir = runtime.metrics_dir
        switcher().listeners.append(self._publish)
        self._publish(switcher().counts)

    def ready(self) -> str | None:
        return self.problem

    def model_for(self, target: str | None) -> Served:
        """The one model, whatever X-Amzn-SageMaker-Target-Model says (single-model endpoints ignore it)."""
        if self.served is None:
            raise ModelUnavailable(self.problem or "the model is not loaded")
        return self.served

    def stats(self) -> dict[str, Any]:
        """Which predictor each worker uses, and the background compile's state: a view of
        the live workers' metrics (``GET /metrics`` has the same numbers)."""
        values = totals(self.metrics_dir)
        status = read_status(self.compile_status) if self.compile_status is not None else None
        return {
            "models_loaded": int(self.served is not None),
            "workers": int(values.get("lightgbm_workers", 0)),
            "workers_predicting_compiled": int(values.get("lightgbm_workers_predicting:compiled", 0)),
            "workers_on_final_compile": int(
                values.get("lightgbm_workers_on_final_compile", 0)
            ),  # nothing better will come
            "switches": int(values.get("lightgbm_predictor_switches_total", 0)),
            "compile": {key: value for key, value in asdict(status).items() if value is not None} if status else None,
        }

    def _publish(self, counts: SwitchCounts) -> None:
        """After every switch (and every finished job): this worker's predictor, in the metrics."""
        predictor = getattr(getattr(self.served, "model", None), "predictor", None)
        compiled = getattr(predictor, "name", "") == "lleaves" or counts.switched > 0
        status = read_status(self.compile_status) if self.compile_status is not None else None
        final = compiled and (status is None or (status.finished and counts.current == status.object))
        metrics.predictor_in_use(compiled, final)


def create_store(settings: ServingSettings, runtime: Runtime) -> ModelStore:
    """The store for the configured mode (multi-model: with this layer's choice of handler)."""
    if settings.multi_model:
        return MultiModelStore(settings, runtime, handler_for)
    return SingleModelStore(settings, runtime)
