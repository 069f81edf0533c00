"""Every metric the container exports, defined once, with prometheus-client.

``serve`` runs several gunicorn worker processes; prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` sets for gunicorn before anything imports this
module) gives each process its own memory-mapped file, and :mod:`.exposition` merges them at
scrape time. So a counter keeps the published counts of a worker that died, and a
``livesum`` gauge drops a dead worker's share (gunicorn's ``child_exit`` hook calls
``mark_process_dead``). Without that variable (``gunicorn wsgi:app`` alone,
Flask's test client) the same metrics live in this process only.

Updates made for every request are added up in the process and published twice a second
(:mod:`.batching`) under one lock, so they cost about 2 µs a request instead of 17 µs.

Names follow Prometheus' conventions: a ``lightgbm_`` prefix, base units (seconds, bytes),
``_total`` on counters. The README lists them. Adding a metric is one definition here; the
code that moves it calls one of the small functions below, never prometheus-client itself,
so label values stay few and known (no unbounded label from a request header).
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.values import ValueClass

from .batching import Batch, PendingCounter, PendingHistogram

#: A request's step times as a handler reports them (``contract.handler.StepTimes`` is one):
#: seconds to decode, predict and encode, and the rows when known.
Steps = tuple[float, float, float, int | None]

#: Our metrics only (no process/GC collectors: in multiprocess mode they would describe the scraper).
REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
ROW_BUCKETS = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
LOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_LABELS = ("method", "route", "status", "content_type")


def _counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, documentation, labels, registry=REGISTRY)


def _histogram(name: str, documentation: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> Histogram:
    return Histogram(name, documentation, labels, buckets=buckets, registry=REGISTRY)


GaugeMode = Literal["livesum", "mostrecent", "max"]  # how multiprocess mode merges the workers' values


def _gauge(name: str, documentation: str, mode: GaugeMode, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(name, documentation, labels, multiprocess_mode=mode, registry=REGISTRY)


# --------------------------------------------------------------------------- HTTP (every route)
HTTP_REQUESTS = _counter(
    "lightgbm_http_requests_total", "Requests answered by the app, by route and status.", HTTP_LABELS
)
HTTP_DURATION = _histogram(
    "lightgbm_http_request_duration_seconds", "Time the app took to answer a request.", LATENCY_BUCKETS, HTTP_LABELS
)
# Bytes as counters (one write per request each; a size histogram costs two, and rows per request
# are a histogram below): rate(bytes) / rate(requests) is the mean body size.
REQUEST_BYTES = _counter("lightgbm_http_request_bytes_total", "Request body bytes received by the app.", ("route",))
RESPONSE_BYTES = _counter("lightgbm_http_response_bytes_total", "Response body bytes the app sent.", ("route",))
ERRORS = _counter("lightgbm_errors_total", "Error answers, by the error code in their JSON body.", ("code", "status"))

# --------------------------------------------------------------------------- inference
ROWS = _histogram("lightgbm_inference_rows", "Records (rows) per prediction request.", ROW_BUCKETS)
STAGE_SECONDS = _histogram(
    "lightgbm_inference_stage_seconds",
    "Time per request in each step: decode, predict, encode.",
    LATENCY_BUCKETS,
    ("stage",),
)

# --------------------------------------------------------------------------- workers and predictors
WORKERS = _gauge("lightgbm_workers", "Live gunicorn workers.", "livesum")
WORKER_RESTARTS = _counter("lightgbm_worker_restarts_total", "Workers gunicorn started to replace one that exited.")
WORKER_TIMEOUTS = _counter(
    "lightgbm_worker_timeouts_total", "Workers gunicorn killed for exceeding the request timeout."
)
PREDICTING = _gauge(
    "lightgbm_workers_predicting",
    "Workers (single-model) by the predictor they use: compiled or lightgbm.",
    "livesum",
    ("predictor",),
)
ON_FINAL_COMPILE = _gauge(
    "lightgbm_workers_on_final_compile", "Workers predicting with the last object their compile job made.", "livesum"
)
PREDICTOR_SWITCHES = _counter(
    "lightgbm_predictor_switches_total", "Switches from LightGBM to compiled trees (or to a better compile)."
)
# The compile job's own state (started, seconds, outcome) is read from its status file at scrape time: exposition.py.

# --------------------------------------------------------------------------- multi-model store
MODEL_LOADS = _counter("lightgbm_model_loads_total", "Model copies loaded by a worker (multi-model).")
MODEL_LOAD_SECONDS = _histogram("lightgbm_model_load_seconds", "Time to load a model copy (multi-model).", LOAD_BUCKETS)
MODEL_HITS = _counter("lightgbm_model_cache_hits_total", "Requests served by a model copy the worker already held.")
MODEL_MISSES = _counter("lightgbm_model_cache_misses_total", "Requests that had to load their model first.")
MODEL_EVICTIONS = _counter("lightgbm_model_evictions_total", "Models evicted, least recently used, to make room.")
MODEL_UNLOADS = _counter("lightgbm_model_unloads_total", "Models unloaded with DELETE /models/<name>.")
MODEL_COPIES = _gauge("lightgbm_model_copies", "Model copies the workers hold.", "livesum")
MODEL_COPY_BYTES = _gauge(
    "lightgbm_model_copies_bytes", "Memory the workers' model copies take, as measured at their loads.", "livesum"
)
WORKER_HEAP_BYTES = _gauge(
    "lightgbm_worker_heap_bytes",
    "Bytes malloc has handed out in the workers (multi-model): the copies' measured sizes plus each worker's own.",
    "livesum",
)
MODELS_REGISTERED = _gauge("lightgbm_models_loaded", "Models loaded in the shared registry.", "mostrecent")
REGISTRY_BYTES = _gauge(
    "lightgbm_model_registry_bytes",
    "Memory the registered models take in one worker holding them all (the budget's measure).",
    "mostrecent",
)
BUDGET_BYTES = _gauge(
    "lightgbm_model_budget_bytes", "Memory budget for models per worker (LIGHTGBM_MODEL_CACHE_MB).", "max"
)
COMPILES_STARTED = _counter("lightgbm_model_compiles_started_total", "Compile jobs started for models kept busy.")
MODELS_COMPILED = _gauge("lightgbm_model_copies_compiled", "Model copies predicting with compiled trees.", "livesum")
MODELS_FINAL_COMPILED = _gauge(
    "lightgbm_model_copies_final_compiled", "Model copies on the last object their compile job made.", "livesum"
)


# --------------------------------------------------------------------------- what the code calls
# Per-request updates are added up in this process and published in batches (batching.py: a
# prediction moves 13 values, which cost 17 µs one by one); rare ones go to prometheus-client at once.

BATCH = Batch()
_http_children: dict[
    tuple[str, str, str, str], tuple[PendingCounter, PendingHistogram, PendingCounter, PendingCounter]
] = {}
_error_children: dict[tuple[str, int], PendingCounter] = {}
_decode, _predict, _encode = (BATCH.histogram(STAGE_SECONDS.labels(stage)) for stage in ("decode", "predict", "encode"))
_rows = BATCH.histogram(ROWS)
_model_hits = BATCH.counter(MODEL_HITS)


def request_answered(
    method: str,
    route: str,
    status: int,
    content_type: str,
    request_bytes: int,
    response_bytes: int,
    seconds: float,
    steps: Steps | None = None,
) -> None:
    """One request the app answered, with the seconds its handler spent in each step when it
    predicted: every per-request update under one lock (the children per label set are made once)."""
    key = (method, route, str(status), content_type)
    with BATCH.lock:
        children = _http_children.get(key)
        if children is None:
            children = _http_children[key] = (
                BATCH.counter(HTTP_REQUESTS.labels(*key)),
                BATCH.histogram(HTTP_DURATION.labels(*key)),
                BATCH.counter(REQUEST_BYTES.labels(route)),
                BATCH.counter(RESPONSE_BYTES.labels(route)),
            )
        requests, duration, request_size, response_size = children
        requests.inc()
        duration.observe(seconds)
        if request_bytes:
            request_size.inc(request_bytes)
        if response_bytes:
            response_size.inc(response_bytes)
        if steps is not None:
            decode, predict, encode, rows = steps
            _decode.observe(decode)
            _predict.observe(predict)
            _encode.observe(encode)
            if rows is not None:
                _rows.observe(rows)


def error_answered(code: str, status: int) -> None:
    with BATCH.lock:
        pending = _error_children.get((code, status))
        if pending is None:
            pending = _error_children[code, status] = BATCH.counter(ERRORS.labels(code, str(status)))
        pending.inc()


def model_hit() -> None:
    """Multi-model: a request served by a model copy this worker already held."""
    with BATCH.lock:
        _model_hits.inc()


def publish() -> None:
    """Hand this process's pending updates to prometheus-client now (before it is scraped)."""
    BATCH.publish()


def multiprocess() -> bool:
    """Whether prometheus-client's multiprocess mode is on in this process (serve's workers)."""
    return bool(getattr(ValueClass, "_multiprocess", False))


def worker_started() -> None:
    """In each worker, once: it counts as live, and publishes its batched updates from now on."""
    WORKERS.set(1)
    BATCH.start_publishing()


def predictor_in_use(compiled: bool, final: bool) -> None:
    """Single-model: which predictor this worker's model uses now."""
    PREDICTING.labels("compiled").set(int(compiled))
    PREDICTING.labels("lightgbm").set(int(not compiled))
    ON_FINAL_COMPILE.set(int(final))
