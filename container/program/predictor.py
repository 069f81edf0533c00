"""The Flask app answering /ping, /invocations and /execution-parameters (and /models in multi-model mode).

Built once per gunicorn worker (after the fork), so the model, LightGBM and OpenMP are
initialised in each worker and never in the supervising process. ``serve`` starts gunicorn
with ``wsgi:app_from_settings('<run dir>/settings.json')``: the settings it resolved (the
compiled model, the shared multi-model state, the user code directory) are handed over as
they are, not re-read from the environment. ``gunicorn wsgi:app``, the classic sample's
way, still works and reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from lightgbm_container.observability.logs import configure_logging
from lightgbm_container.packages import use_pickle_packages
from lightgbm_container.serving.app import create_app
from lightgbm_container.serving.store import create_store
from lightgbm_container.settings import Runtime, ServingSettings, read_handoff, serving_settings


def build_app(settings: ServingSettings, runtime: Runtime) -> Flask:
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, runtime, create_store(settings, runtime))


def app_from_settings(path: str) -> Flask:
    """The app for the settings file ``serve`` wrote for its workers (configuration and run-time decisions)."""
    return build_app(*read_handoff(Path(path).read_text()))


def __getattr__(name: str) -> Flask:
    """``predictor.app``: built from the environment on first use (``gunicorn wsgi:app``)."""
    if name == "app":
        settings = serving_settings()
        if settings.allow_pickle:  # this process may meet a pickle: scikit-learn before LightGBM (packages.py)
            use_pickle_packages()
        app = build_app(settings, Runtime(scikit_learn=settings.allow_pickle))
        globals()["app"] = app
        return app
    raise AttributeError(name)
