"""``serve``'s configuration: every variable it, nginx, gunicorn and the workers read, once.

What ``serve`` decides at run time and hands its workers (the code directory, the compile
job's status file, shared directories) is not configuration: :mod:`.runtime`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .logs import log_settings
from .parsing import SettingsError, boolean, choice, integer, text
from .paths import MLPaths, ml_paths
from .resources import CGROUP_ROOT, available_cores, memory_limit_bytes
from .scratch import writable_temp_dir

DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MAX_PAYLOAD_MB = 6
#: Batch Transform sends at most this per request (and /execution-parameters never asks for more);
#: asynchronous inference up to ASYNC_MAX_PAYLOAD_MB, read from S3.
BATCH_MAX_PAYLOAD_MB = 100
ASYNC_MAX_PAYLOAD_MB = 1024
#: A body larger than this is read, decoded and predicted in pieces of this size (LIGHTGBM_BODY_PIECE_MB).
DEFAULT_BODY_PIECE_MB = 16
#: What one worker needs besides its models (Python, LightGBM, pandas, Flask): measured ~150 MB.
WORKER_OVERHEAD_MB = 200


@dataclass(frozen=True)
class ServingSettings:
    """What `serve`, nginx, gunicorn and the Flask app are configured with."""

    paths: MLPaths
    port: int
    listen_address: str
    workers: int
    server_threads: int  # request threads per worker, each answering one connection at a time (serving/sync_worker.py)
    predict_threads: int
    #: Which rule chose predict_threads (LIGHTGBM_PREDICT_THREADS, OMP_NUM_THREADS or the cores' share), for the log.
    predict_threads_from: str
    timeout_seconds: int
    max_payload_mb: int
    batch: bool
    batch_strategy: str
    max_concurrent_transforms: int
    multi_model: bool
    #: glibc malloc's tuning for the workers, where the user set none (multi-model: see MULTI_MODEL_MALLOC).
    malloc_tuning: dict[str, str]
    predictor_backend: str  # "auto" (lleaves when it compiles and agrees), "lleaves", "lightgbm"
    compile_cache_dir: Path
    compile_timeout_seconds: int
    compile_memory_mb: int  # a compile whose estimated peak exceeds this is not run (compilation/artifact.py)
    model_cache_bytes: int  # multi-model: memory budget for loaded models, per worker
    max_archive_bytes: int  # multi-model: largest expanded model archive
    log_level: str
    log_format: str  # LOG_FORMAT: plain lines (default) or json (observability/logs.py)
    # User code (the SageMaker Inference Toolkit's and MMS's variables; see user_code/)
    program: str | None  # SAGEMAKER_PROGRAM: the inference script, e.g. "inference.py"
    submit_directory: str | None  # SAGEMAKER_SUBMIT_DIRECTORY: a directory, file:// path or s3:// tarball
    custom_service: str | None  # SAGEMAKER_HANDLER: an MMS custom service, "module[:function]"
    #: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT as set (None: unset): a missing or */* Accept's answer
    #: type (an inference pipeline's steps pass answers on with it). Unset, user code answers in
    #: JSON (the toolkit's default) and the built-in handler in the request's own type.
    invocations_accept: str | None
    mms_decode_input: bool  # MMS_DECODE_INPUT_REQUEST: custom services get JSON and text bodies decoded
    allow_pickle: bool  # LIGHTGBM_ALLOW_PICKLE: serve pickled models (unpickling runs code from the file)
    inference_output: tuple[
        str, ...
    ] = ()  # SAGEMAKER_INFERENCE_OUTPUT: default output kinds (builtin/output_selection.py)
    response_style: str = "auto"  # LIGHTGBM_RESPONSE_STYLE: every answer's layout (builtin/styles/); auto: each model's
    body_piece_mb: int = DEFAULT_BODY_PIECE_MB  # LIGHTGBM_BODY_PIECE_MB: larger bodies are read in pieces this big

    @property
    def default_accept(self) -> str:
        """User code's answer type for a missing or ``*/*`` Accept: the toolkit's rule."""
        return self.invocations_accept or "application/json"

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024

    @property
    def body_piece_bytes(self) -> int:
        return self.body_piece_mb * 1024 * 1024

    @property
    def derived_models_dir(self) -> Path:
        """Where the LightGBM text of pickled trees is written, by the workers and the compile job alike."""
        return self.compile_cache_dir / "models"


def default_model_cache_mb(workers: int, cgroup_root: Path = CGROUP_ROOT) -> int:
    """Each worker holds its own copy of every model it serves: share 75 % of the limit."""
    usable_mb = memory_limit_bytes(cgroup_root) * 3 // 4 // (1024 * 1024)
    return max(64, usable_mb // workers - WORKER_OVERHEAD_MB)


def _workers_and_threads(env: Mapping[str, str], cgroup_root: Path) -> tuple[int, int, str]:
    """(gunicorn workers, LightGBM threads per prediction, which rule chose the threads).

    Workers: ``SAGEMAKER_MODEL_SERVER_WORKERS`` (or ``MODEL_SERVER_WORKERS``), else one per
    available core. Threads: ``LIGHTGBM_PREDICT_THREADS``, else a user's ``OMP_NUM_THREADS``
    (Inference Recommender sweeps it; its first level when nested, ``"4,2"``), else the cores
    shared among the workers (at least 1). Our own setting may not oversubscribe the cores
    (LightGBM's OpenMP crawls or hangs then); ``OMP_NUM_THREADS`` is honoured as given and
    ``serve`` warns when it oversubscribes.
    """
    cores = available_cores(cgroup_root)
    workers = integer(env, "SAGEMAKER_MODEL_SERVER_WORKERS", "MODEL_SERVER_WORKERS", default=cores, maximum=256)
    if text(env, "LIGHTGBM_PREDICT_THREADS") is not None:
        predict_threads = integer(env, "LIGHTGBM_PREDICT_THREADS", default=1, maximum=cores)
        if workers * predict_threads > cores:
            raise SettingsError(
                f"LIGHTGBM_PREDICT_THREADS={predict_threads} with {workers} workers would use "
                f"{workers * predict_threads} threads on {cores} cores; lower one of them"
            )
        return workers, predict_threads, "LIGHTGBM_PREDICT_THREADS"
    omp = text(env, "OMP_NUM_THREADS")
    if omp is not None:
        first_level = {"OMP_NUM_THREADS": omp.split(",")[0].strip()}  # "4,2": nested levels, ours is the first
        return workers, integer(first_level, "OMP_NUM_THREADS", default=1, maximum=1024), "OMP_NUM_THREADS"
    return workers, max(1, cores // workers), f"{cores} core(s) / {workers} worker(s)"


#: Multi-model workers load and drop models all the time. glibc's defaults let that memory
#: fragment: an arena per thread (LightGBM's OpenMP threads and the request threads each get one,
#: up to 8 per core), and a model file's large read buffers moved into the heap once the
#: mmap threshold adjusts itself upwards after the first ones are freed. Two arenas, and
#: buffers of 1 MB or more always mapped (so given back when freed), keep a worker's memory
#: near what its models measure (bench/mme_vs_mms.py --soak). 128 KB, glibc's starting
#: threshold, cost a one-row request 12 us (p50 0.254 -> 0.266 ms: some buffer of each request
#: is larger); 1 MB measured no different from glibc's defaults.
MULTI_MODEL_MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "1048576"}


def serving_settings(env: Mapping[str, str] | None = None, cgroup_root: Path = CGROUP_ROOT) -> ServingSettings:
    """Read the serving settings; raises SettingsError naming the bad variable. ``cgroup_root``:
    where the container's limits are read (:mod:`.resources`; tests give a fabricated tree)."""
    env = os.environ if env is None else env
    workers, predict_threads, threads_from = _workers_and_threads(env, cgroup_root)
    multi_model = boolean(env, "SAGEMAKER_MULTI_MODEL")
    # Multi-model workers need threads so that one request loading a model never holds up
    # requests for models already loaded; single-model workers are fastest synchronous.
    server_threads = integer(env, "LIGHTGBM_SERVER_THREADS", default=4 if multi_model else 1, maximum=64)
    logs = log_settings(env)
    return ServingSettings(
        paths=ml_paths(env),
        port=integer(env, "SAGEMAKER_BIND_TO_PORT", default=DEFAULT_PORT, maximum=65535),
        listen_address=env.get("SERVE_LISTEN_ADDRESS", "").strip() or "0.0.0.0",
        workers=workers,
        server_threads=server_threads,
        predict_threads=predict_threads,
        predict_threads_from=threads_from,
        timeout_seconds=integer(
            env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", "MODEL_SERVER_TIMEOUT", default=DEFAULT_TIMEOUT_SECONDS, maximum=3600
        ),
        max_payload_mb=integer(
            env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", default=DEFAULT_MAX_PAYLOAD_MB, maximum=ASYNC_MAX_PAYLOAD_MB
        ),
        batch=boolean(env, "SAGEMAKER_BATCH"),
        batch_strategy=choice(
            env, "SAGEMAKER_BATCH_STRATEGY", ("multi_record", "single_record"), "multi_record"
        ).upper(),
        max_concurrent_transforms=integer(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", default=workers, maximum=256),
        multi_model=multi_model,
        malloc_tuning={key: value for key, value in MULTI_MODEL_MALLOC.items() if key not in env}
        if multi_model
        else {},
        predictor_backend=choice(env, "LIGHTGBM_PREDICTOR", ("auto", "lleaves", "lightgbm"), "auto"),
        compile_cache_dir=compile_cache_dir(env),
        compile_timeout_seconds=compile_timeout_seconds(env),
        compile_memory_mb=compile_memory_mb(env, cgroup_root),
        model_cache_bytes=integer(
            env, "LIGHTGBM_MODEL_CACHE_MB", default=default_model_cache_mb(workers, cgroup_root), maximum=1024 * 1024
        )
        * 1024
        * 1024,
        max_archive_bytes=integer(env, "LIGHTGBM_MAX_ARCHIVE_MB", default=2048, maximum=1024 * 1024) * 1024 * 1024,
        log_level=logs.level,
        log_format=logs.format,
        program=text(env, "SAGEMAKER_PROGRAM"),
        submit_directory=text(env, "SAGEMAKER_SUBMIT_DIRECTORY"),
        custom_service=text(env, "SAGEMAKER_HANDLER"),
        invocations_accept=text(env, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"),
        mms_decode_input=boolean(env, "MMS_DECODE_INPUT_REQUEST", default=True),
        allow_pickle=boolean(env, "LIGHTGBM_ALLOW_PICKLE", default=True),
        inference_output=tuple(
            kind.strip().lower() for kind in env.get("SAGEMAKER_INFERENCE_OUTPUT", "").split(",") if kind.strip()
        ),
        response_style=(text(env, "LIGHTGBM_RESPONSE_STYLE") or "auto").lower(),
        body_piece_mb=integer(env, "LIGHTGBM_BODY_PIECE_MB", default=DEFAULT_BODY_PIECE_MB, maximum=1024),
    )


def compile_memory_mb(env: Mapping[str, str], cgroup_root: Path = CGROUP_ROOT) -> int:
    """The memory one compile may take, in ``serve`` and ``train`` alike: ``LIGHTGBM_COMPILE_MAX_MB``,
    by default a quarter of the container's memory (a fully optimised compile of 3 classes x 500
    trees of 63 leaves took 9.3 GB: compilation/artifact.py; the workers keep the rest). A compile
    whose estimated peak is above it is not run, and the job's heap is capped at it (RLIMIT_DATA:
    compilation/job.py), so on a 1 GB serverless endpoint a compile cannot take the container past its memory."""
    return integer(
        env,
        "LIGHTGBM_COMPILE_MAX_MB",
        default=memory_limit_bytes(cgroup_root) // (4 * 1024 * 1024),
        maximum=1024 * 1024,
    )


def compile_cache_dir(env: Mapping[str, str]) -> Path:
    """``LIGHTGBM_COMPILE_CACHE``, else ``lightgbm-container-cache`` in the writable temporary
    directory (:mod:`.scratch`): a read-only root file system leaves no other place."""
    return Path(text(env, "LIGHTGBM_COMPILE_CACHE") or writable_temp_dir() / "lightgbm-container-cache")


def compile_timeout_seconds(env: Mapping[str, str]) -> int:
    """Seconds one compile job may take, in ``serve`` and ``train`` alike (``LIGHTGBM_COMPILE_TIMEOUT``)."""
    return integer(env, "LIGHTGBM_COMPILE_TIMEOUT", default=300, maximum=3600)
