"""Every environment variable the container reads, parsed once into typed settings.

Nothing else in the package touches ``os.environ``: this keeps the SageMaker contract
(which variables exist, their defaults, their aliases) in one place that can be read
and tested on its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

DEFAULT_ML_ROOT = "/opt/ml"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MAX_PAYLOAD_MB = 6
BATCH_MAX_PAYLOAD_MB = 100


class SettingsError(ValueError):
    """An environment variable holds a value the container cannot use."""


@dataclass(frozen=True)
class MLPaths:
    """SageMaker's /opt/ml layout, rooted anywhere (``SAGEMAKER_BASE_DIR``) for local runs."""

    root: Path

    @property
    def input_config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.input_config / "hyperparameters.json"

    @property
    def input_data_config(self) -> Path:
        return self.input_config / "inputdataconfig.json"

    @property
    def resource_config(self) -> Path:
        return self.input_config / "resourceconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        """SageMaker syncs it with ``checkpoint_s3_uri``; it exists only when the job has one."""
        return self.root / "checkpoints"

    @property
    def models(self) -> Path:
        """Multi-model endpoints: SageMaker extracts each model under here."""
        return self.root / "models"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def failure(self) -> Path:
        return self.output / "failure"


@dataclass(frozen=True)
class ServingSettings:
    """What `serve`, nginx, gunicorn and the Flask app need to know."""

    paths: MLPaths
    port: int
    listen_address: str
    workers: int
    server_threads: int  # request threads per worker: 1 = sync workers, more = gthread
    predict_threads: int
    timeout_seconds: int
    max_payload_mb: int
    batch: bool
    batch_strategy: str
    max_concurrent_transforms: int
    multi_model: bool
    predictor_backend: str  # "auto" (lleaves when it compiles and agrees), "lleaves", "lightgbm"
    compile_cache_dir: Path
    compile_timeout_seconds: int
    compile_memory_mb: int  # a compile whose estimated peak exceeds this is not run (compilation/artifact.py)
    compiled_model: Path | None  # set by `serve` for its workers when it compiled before starting them
    model_cache_bytes: int  # multi-model: memory budget for loaded models, per worker
    max_archive_bytes: int  # multi-model: largest expanded model archive
    state_dir: Path | None  # multi-model: the run directory `serve` shares with its workers
    log_level: str
    log_format: str  # LOG_FORMAT: plain lines (default) or json (observability/logs.py)
    # User code (the SageMaker Inference Toolkit's and MMS's variables; see user_code/)
    program: str | None  # SAGEMAKER_PROGRAM: the inference script, e.g. "inference.py"
    submit_directory: str | None  # SAGEMAKER_SUBMIT_DIRECTORY: a directory, file:// path or s3:// tarball
    custom_service: str | None  # SAGEMAKER_HANDLER: an MMS custom service, "module[:function]"
    default_accept: str  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: user code's answer type for a missing or */* Accept
    mms_decode_input: bool  # MMS_DECODE_INPUT_REQUEST: custom services get JSON and text bodies decoded
    code_dir: Path | None = None  # set by `serve` for its workers once the user code is in place
    compile_status: Path | None = None  # set by `serve`: the background compile its workers switch after
    inference_output: tuple[str, ...] = ()  # SAGEMAKER_INFERENCE_OUTPUT: default output kinds (model/outputs.py)
    metrics_dir: Path | None = None  # set by `serve`: where every worker's metrics files live (observability/metrics.py)
    health_dir: Path | None = None  # set by `serve`: where each worker publishes its state for /ping (serving/health.py)

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024

    def to_json(self) -> str:
        """The settings as ``serve`` resolved them, for its workers (see :func:`settings_from_json`)."""
        return json.dumps(dataclasses.asdict(self), default=str)


def settings_from_json(text: str) -> ServingSettings:
    """The settings ``serve`` handed to its workers: read, never re-derived from the environment."""
    raw: dict[str, Any] = json.loads(text)
    raw["paths"] = MLPaths(Path(raw["paths"]["root"]))
    for name in ("compile_cache_dir", "compiled_model", "compile_status", "state_dir", "code_dir", "metrics_dir", "health_dir"):
        if raw.get(name) is not None:
            raw[name] = Path(raw[name])
    raw["inference_output"] = tuple(raw.get("inference_output") or ())
    return ServingSettings(**raw)


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _int(env: Mapping[str, str], *names: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    found = _first(env, *names)
    if found is None:
        return default
    name, raw = found
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SettingsError(f"{name}={value} must be {bound}")
    return value


def _text(env: Mapping[str, str], name: str) -> str | None:
    """A string variable; unset and empty are the same (the SDK sends "" for "none")."""
    return env.get(name, "").strip() or None


#: SAGEMAKER_CONTAINER_LOG_LEVEL carries Python's numeric levels ("20"), as the SDK sends them.
_NUMERIC_LEVELS = {"10": "debug", "20": "info", "30": "warning", "40": "error", "50": "error"}


def _log_level(env: Mapping[str, str]) -> str:
    """LOG_LEVEL, else the SDK's SAGEMAKER_CONTAINER_LOG_LEVEL, else info."""
    if not env.get("LOG_LEVEL", "").strip() and env.get("SAGEMAKER_CONTAINER_LOG_LEVEL", "").strip():
        numeric = env["SAGEMAKER_CONTAINER_LOG_LEVEL"].strip()
        if numeric not in _NUMERIC_LEVELS:
            raise SettingsError(f"SAGEMAKER_CONTAINER_LOG_LEVEL={numeric!r} must be one of 10, 20, 30, 40, 50")
        return _NUMERIC_LEVELS[numeric].upper()
    return _choice(env, "LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()


def log_format(env: Mapping[str, str] | None = None) -> str:
    """LOG_FORMAT: ``plain`` (default, CloudWatch-friendly lines) or ``json`` (one object per line)."""
    env = os.environ if env is None else env
    return _choice(env, "LOG_FORMAT", ("plain", "json"), "plain")


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={env[name]!r} must be true or false")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return raw


def available_cores() -> int:
    """CPUs this process may really use: the affinity mask, capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def memory_limit_bytes() -> int:
    """The container's memory limit (cgroup v2 or v1), else the machine's memory."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:  # v1 reports "no limit" as a huge number
            return int(raw)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


#: What one worker needs besides its models (Python, LightGBM, pandas, Flask): measured ~150 MB.
WORKER_OVERHEAD_MB = 200


def default_model_cache_mb(workers: int) -> int:
    """Each worker holds its own copy of every model it serves: share 75 % of the limit."""
    usable_mb = memory_limit_bytes() * 3 // 4 // (1024 * 1024)
    return max(64, usable_mb // workers - WORKER_OVERHEAD_MB)


def ml_paths(env: Mapping[str, str] | None = None) -> MLPaths:
    env = os.environ if env is None else env
    return MLPaths(Path(env.get("SAGEMAKER_BASE_DIR", "").strip() or DEFAULT_ML_ROOT))


def serving_settings(env: Mapping[str, str] | None = None) -> ServingSettings:
    """Read the serving settings; raises SettingsError naming the bad variable."""
    env = os.environ if env is None else env
    cores = available_cores()
    workers = _int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", "MODEL_SERVER_WORKERS", default=cores, maximum=256)
    # LightGBM/OpenMP crawl or hang when oversubscribed: share the cores between workers.
    default_threads = max(1, cores // workers)
    predict_threads = _int(env, "LIGHTGBM_PREDICT_THREADS", default=default_threads, maximum=cores)
    if workers * predict_threads > cores and "LIGHTGBM_PREDICT_THREADS" in env:
        raise SettingsError(
            f"LIGHTGBM_PREDICT_THREADS={predict_threads} with {workers} workers would use "
            f"{workers * predict_threads} threads on {cores} cores; lower one of them"
        )
    multi_model = _bool(env, "SAGEMAKER_MULTI_MODEL")
    # Multi-model workers need threads so that one request loading a model never holds up
    # requests for models already loaded; single-model workers are fastest synchronous.
    server_threads = _int(env, "LIGHTGBM_SERVER_THREADS", default=4 if multi_model else 1, maximum=64)
    batch = _bool(env, "SAGEMAKER_BATCH")
    payload_default = DEFAULT_MAX_PAYLOAD_MB
    max_payload_mb = _int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", default=payload_default, maximum=BATCH_MAX_PAYLOAD_MB)
    return ServingSettings(
        paths=ml_paths(env),
        port=_int(env, "SAGEMAKER_BIND_TO_PORT", default=DEFAULT_PORT, maximum=65535),
        listen_address=env.get("SERVE_LISTEN_ADDRESS", "").strip() or "0.0.0.0",
        workers=workers,
        server_threads=server_threads,
        predict_threads=predict_threads,
        timeout_seconds=_int(
            env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", "MODEL_SERVER_TIMEOUT", default=DEFAULT_TIMEOUT_SECONDS, maximum=3600
        ),
        max_payload_mb=max_payload_mb,
        batch=batch,
        batch_strategy=_choice(env, "SAGEMAKER_BATCH_STRATEGY", ("multi_record", "single_record"), "multi_record").upper(),
        max_concurrent_transforms=_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", default=workers, maximum=256),
        multi_model=multi_model,
        predictor_backend=_choice(env, "LIGHTGBM_PREDICTOR", ("auto", "lleaves", "lightgbm"), "auto"),
        compile_cache_dir=Path(env.get("LIGHTGBM_COMPILE_CACHE", "").strip() or "/tmp/lightgbm-container-cache"),
        compile_timeout_seconds=_compile_timeout(env),
        compile_memory_mb=compile_memory_mb(env),
        compiled_model=None,
        model_cache_bytes=_int(
            env, "LIGHTGBM_MODEL_CACHE_MB", default=default_model_cache_mb(workers), maximum=1024 * 1024
        ) * 1024 * 1024,
        max_archive_bytes=_int(env, "LIGHTGBM_MAX_ARCHIVE_MB", default=2048, maximum=1024 * 1024) * 1024 * 1024,
        state_dir=Path(env["LIGHTGBM_STATE_DIR"]) if env.get("LIGHTGBM_STATE_DIR") else None,  # tests; serve sets its own
        log_level=_log_level(env),
        log_format=log_format(env),
        program=_text(env, "SAGEMAKER_PROGRAM"),
        submit_directory=_text(env, "SAGEMAKER_SUBMIT_DIRECTORY"),
        custom_service=_text(env, "SAGEMAKER_HANDLER"),
        default_accept=_text(env, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or "application/json",
        mms_decode_input=_bool(env, "MMS_DECODE_INPUT_REQUEST", default=True),
        inference_output=_output_kinds(env, "SAGEMAKER_INFERENCE_OUTPUT"),
    )


def compile_ahead_seconds(env: Mapping[str, str] | None = None) -> int:
    """``train``'s budget for compiling the model it wrote (0: do not), from
    ``LIGHTGBM_COMPILE_AHEAD`` (default on) and ``LIGHTGBM_COMPILE_TIMEOUT`` (default 300 s)."""
    env = os.environ if env is None else env
    if not _bool(env, "LIGHTGBM_COMPILE_AHEAD", default=True):
        return 0
    return _compile_timeout(env)


def compile_memory_mb(env: Mapping[str, str] | None = None) -> int:
    """The memory one compile may take, in ``serve`` and ``train`` alike: ``LIGHTGBM_COMPILE_MAX_MB``,
    by default a quarter of the container's memory (a fully optimised compile of 3 classes x 500
    trees of 63 leaves took 9.3 GB: compilation/artifact.py; the workers keep the rest)."""
    env = os.environ if env is None else env
    return _int(env, "LIGHTGBM_COMPILE_MAX_MB", default=memory_limit_bytes() // (4 * 1024 * 1024), maximum=1024 * 1024)


def _compile_timeout(env: Mapping[str, str]) -> int:
    """Seconds one compile job may take, in ``serve`` and ``train`` alike."""
    return _int(env, "LIGHTGBM_COMPILE_TIMEOUT", default=300, maximum=3600)


def _output_kinds(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated output kind names, each one the container knows (checked at start)."""
    from .errors import did_you_mean
    from .model.outputs import KIND_NAMES

    kinds = tuple(kind.strip().lower() for kind in env.get(name, "").split(",") if kind.strip())
    for kind in kinds:
        if kind not in KIND_NAMES:
            hint = did_you_mean(kind, KIND_NAMES)
            raise SettingsError(
                f"{name}: unknown output kind {kind!r}{f' (did you mean {hint!r}?)' if hint else ''}; "
                f"the kinds are {', '.join(KIND_NAMES)}"
            )
    return kinds


def network_timeout_seconds(env: Mapping[str, str] | None = None) -> int:
    """How long `train` on several instances waits for every host to resolve and answer
    (``LIGHTGBM_NETWORK_TIMEOUT``, default 300 s) before failing with the silent hosts' names."""
    env = os.environ if env is None else env
    return _int(env, "LIGHTGBM_NETWORK_TIMEOUT", default=300, maximum=24 * 3600)


def host_addresses(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, int]] | None:
    """``LIGHTGBM_HOST_ADDRESSES`` (``algo-1=10.0.0.5:12400,algo-2=10.0.0.6:12400``): every
    host's address and LightGBM port, instead of resolving the names with one common port
    (several `train` processes on one machine in tests; custom networks). None when unset."""
    env = os.environ if env is None else env
    raw = _text(env, "LIGHTGBM_HOST_ADDRESSES")
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
