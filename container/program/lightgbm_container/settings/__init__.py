"""Every environment variable the container reads, parsed once into typed settings.

Nothing else in the package touches ``os.environ`` (ruff's banned-api rule and a unit test
say so): this keeps the SageMaker contract (which variables exist, their defaults, their
aliases) in one place that can be read and tested on its own.

- :mod:`.serving`, :mod:`.training`, :mod:`.logs`: each program's configuration;
- :mod:`.runtime`: what ``serve`` decides and hands its workers (not configuration);
- :mod:`.resources`: the CPUs and memory the container may use (cgroup v1 and v2);
- :mod:`.paths`: SageMaker's ``/opt/ml`` layout; :mod:`.parsing`: one variable at a time.
"""

from __future__ import annotations

import os

from .logs import LogSettings, log_settings
from .parsing import SettingsError
from .paths import DEFAULT_ML_ROOT, MLPaths, ml_paths
from .runtime import Runtime, handoff_json, read_handoff
from .serving import ServingSettings, serving_settings
from .training import TrainingSettings, training_settings

__all__ = [
    "DEFAULT_ML_ROOT",
    "LogSettings",
    "MLPaths",
    "Runtime",
    "ServingSettings",
    "SettingsError",
    "TrainingSettings",
    "child_environment",
    "handoff_json",
    "inherited_pythonpath",
    "log_settings",
    "ml_paths",
    "read_handoff",
    "serving_settings",
    "training_settings",
]


def inherited_pythonpath() -> str:
    """``PYTHONPATH`` as this process got it ("" when unset), for a child's that adds to it."""
    return os.environ.get("PYTHONPATH", "")


def child_environment(**changes: str) -> dict[str, str]:
    """This process' environment with ``changes``, for a program it starts (gunicorn, a compile job)."""
    return {**os.environ, **changes}
