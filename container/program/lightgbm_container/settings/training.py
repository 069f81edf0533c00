"""``train``'s configuration: every variable it reads, once (hyperparameters come from files)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .logs import LogSettings, log_settings
from .parsing import SettingsError, boolean, choice, integer, text
from .paths import MLPaths, ml_paths
from .serving import compile_memory_mb, compile_timeout_seconds


@dataclass(frozen=True)
class TrainingSettings:
    paths: MLPaths
    logs: LogSettings
    compile_ahead_seconds: int  # 0: do not compile the written model (LIGHTGBM_COMPILE_AHEAD=false)
    compile_memory_mb: int
    network_timeout_seconds: int  # LIGHTGBM_NETWORK_TIMEOUT
    host_addresses: dict[str, tuple[str, int]] | None  # LIGHTGBM_HOST_ADDRESSES
    #: LIGHTGBM_CONVENTIONS: whose data layout, hyperparameter defaults and log lines a job follows
    #: (training/builtin_algorithm.py): auto (recognised from the job), builtin-algorithm or ours.
    conventions: str = "auto"


def training_settings(env: Mapping[str, str] | None = None) -> TrainingSettings:
    """Read the training settings; raises SettingsError naming the bad variable."""
    env = os.environ if env is None else env
    return TrainingSettings(
        paths=ml_paths(env),
        logs=log_settings(env),
        compile_ahead_seconds=compile_timeout_seconds(env)
        if boolean(env, "LIGHTGBM_COMPILE_AHEAD", default=True)
        else 0,
        compile_memory_mb=compile_memory_mb(env),
        network_timeout_seconds=integer(env, "LIGHTGBM_NETWORK_TIMEOUT", default=300, maximum=24 * 3600),
        host_addresses=host_addresses(env),
        conventions=choice(env, "LIGHTGBM_CONVENTIONS", ("auto", "builtin-algorithm", "ours"), "auto"),
    )


def host_addresses(env: Mapping[str, str]) -> dict[str, tuple[str, int]] | None:
    """``LIGHTGBM_HOST_ADDRESSES`` (``algo-1=10.0.0.5:12400,algo-2=10.0.0.6:12400``): every
    host's address and LightGBM port, instead of resolving the names with one common port
    (several `train` processes on one machine in tests; custom networks). None when unset."""
    raw = text(env, "LIGHTGBM_HOST_ADDRESSES")
    if raw is None:
        return None
    addresses = {}
    for entry in raw.split(","):
        host, _, address = entry.strip().partition("=")
        ip, _, port = address.rpartition(":")
        if not host or not ip or not port.isdigit():
            raise SettingsError(f"LIGHTGBM_HOST_ADDRESSES entry {entry.strip()!r} is not host=address:port")
        addresses[host] = (ip, int(port))
    return addresses
