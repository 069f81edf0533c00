"""How every program of the container logs: ``serve`` and its workers, ``train``, the compile job."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .parsing import SettingsError, choice

PLAIN, JSON = "plain", "json"
#: SAGEMAKER_CONTAINER_LOG_LEVEL carries Python's numeric levels ("20"), as the SDK sends them.
_NUMERIC_LEVELS = {"10": "debug", "20": "info", "30": "warning", "40": "error", "50": "error"}


@dataclass(frozen=True)
class LogSettings:
    level: str  # DEBUG, INFO, WARNING or ERROR
    format: str  # LOG_FORMAT: plain lines (default) or json (observability/logs.py)


def log_settings(env: Mapping[str, str] | None = None) -> LogSettings:
    """``LOG_LEVEL``, else the SDK's ``SAGEMAKER_CONTAINER_LOG_LEVEL``, else info; ``LOG_FORMAT``."""
    env = os.environ if env is None else env
    return LogSettings(_level(env), choice(env, "LOG_FORMAT", (PLAIN, JSON), PLAIN))


def _level(env: Mapping[str, str]) -> str:
    if not env.get("LOG_LEVEL", "").strip() and env.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "").strip():
        numeric = env["SAGEMAKER_CONTAINER_LOG_LEVEL"].strip()
        if numeric not in _NUMERIC_LEVELS:
            raise SettingsError(f"SAGEMAKER_CONTAINER_LOG_LEVEL={numeric!r} must be one of 10, 20, 30, 40, 50")
        return _NUMERIC_LEVELS[numeric].upper()
    return choice(env, "LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
