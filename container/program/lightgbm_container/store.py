"""Model stores answer "give me the model for this request".

Single-model mode has exactly one model, loaded before the worker accepts traffic, so
``/ping`` can answer 200 without doing any work. Multi-model mode: :mod:`.multi_model`.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from .codecs import warm_up
from .model import LoadedModel, load_model
from .settings import ServingSettings

log = logging.getLogger(__name__)


class ModelStore(Protocol):
    """What the HTTP layer needs from a store, in either mode."""

    def ready(self) -> bool: ...

    def model_for(self, target: str | None) -> LoadedModel: ...


class SingleModelStore:
    def __init__(self, settings: ServingSettings) -> None:
        self.model = load_model(settings.paths.model, settings.predict_threads, settings.compiled_model)
        # One throw-away prediction: first-call costs (thread pools, lazy imports) are paid now, not by a caller.
        self.model.predict(np.zeros((1, self.model.num_features)))
        warm_up()
        log.info("model loaded: %s", self.model.describe())

    def ready(self) -> bool:
        return True

    def model_for(self, target: str | None) -> LoadedModel:
        """The one model, whatever X-Amzn-SageMaker-Target-Model says (single-model endpoints ignore it)."""
        return self.model


def create_store(settings: ServingSettings) -> ModelStore:
    """The store for the configured mode."""
    if settings.multi_model:
        from .multi_model import MultiModelStore

        return MultiModelStore(settings)
    return SingleModelStore(settings)
