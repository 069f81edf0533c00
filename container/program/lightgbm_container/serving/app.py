"""The Flask application: routes only; the work happens in the model's handler (:mod:`.handler`).

Every error leaves as JSON through :func:`_render_error`, with the request's id; a bug
answers a generic 500 whose trace goes to the log, never to the caller. Every answer is
counted and timed for ``GET /metrics`` (:mod:`..observability`) by :class:`CountedApp` around it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from time import perf_counter
from typing import Any, cast

import orjson
from flask import Flask, Response, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .. import errors
from ..codecs import CODECS, base_media_type
from ..compilation.metrics import CompileJobCollector
from ..contract.handler import BodyStream, InferenceRequest, InferenceResponse, Served
from ..heap import TRIM_AFTER_BYTES, release_freed_memory
from ..multi_model.store import MultiModelStore
from ..observability import exposition, metrics, request_ids
from ..settings import Runtime, ServingSettings
from ..settings.serving import BATCH_MAX_PAYLOAD_MB
from .health import publish_worker
from .store import ModelStore

log = logging.getLogger(__name__)

TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
#: Where a prediction leaves its handler's StepTimes in the WSGI environ for CountedApp.
STEPS_KEY = "lightgbm_container.steps"

_HTTP_ERRORS = {
    404: errors.RouteNotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


def _render_error(error: errors.ServingError) -> Response:
    metrics.error_answered(error.code, error.status)
    body = errors.error_body(error, request_ids.current())
    return Response(body, status=error.status, content_type="application/json")


def _logged_error(error: errors.ServingError, method: str, path: str) -> Response:
    """A request's error, logged (one line naming it) and rendered: the Flask route's and the direct path's."""
    log.info(
        "%s %s -> %d %s",
        method,
        path,
        error.status,
        error.message,
        extra={"method": method, "path": path, "status": error.status, "error": error.code},
    )
    return _render_error(error)


def _unexpected_error(method: str, path: str) -> Response:
    """A bug: its trace to the log, a generic 500 to the caller."""
    log.exception("unexpected error on %s %s", method, path)
    return _render_error(errors.ServingError("internal error while handling the request; see the container log"))


def content_type_label(header: str | None) -> str:
    """A request's Content-Type as a metric label: a supported type's canonical name, ``none``
    or ``other`` (never the raw header: labels must stay few)."""
    media_type = base_media_type(header)
    codec = CODECS.get(media_type)
    if codec is not None:
        return codec.media_type
    return (
        "none"
        if not media_type
        else "application/octet-stream"
        if media_type == "application/octet-stream"
        else "other"
    )


def execution_parameters(settings: ServingSettings) -> dict[str, object]:
    """What Batch Transform should send: SageMaker requires concurrency x payload <= 100 MB (a
    larger SAGEMAKER_MAX_PAYLOAD_IN_MB, for asynchronous inference, is offered as 100)."""
    payload = min(settings.max_payload_mb, BATCH_MAX_PAYLOAD_MB)
    concurrency = max(1, min(settings.max_concurrent_transforms, BATCH_MAX_PAYLOAD_MB // payload))
    return {"MaxConcurrentTransforms": concurrency, "BatchStrategy": settings.batch_strategy, "MaxPayloadInMB": payload}


def create_app(settings: ServingSettings, runtime: Runtime, store: ModelStore) -> Flask:
    """The app of one worker: SageMaker's routes (and the multi-model API) over ``store``, errors
    as JSON, every answer counted and timed."""
    app = Flask("lightgbm_container")
    # Werkzeug would answer "//invocations" with an HTML 308 redirect; a path is matched as sent.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    metrics.worker_started()
    if runtime.health_dir is not None:  # serve's nginx answers /ping from what the workers publish
        publish_worker(runtime.health_dir, store.ready())
    _add_routes(app, settings, runtime, store)
    if isinstance(store, MultiModelStore):
        _add_multi_model_routes(app, store, settings.body_piece_bytes)
    _add_error_handlers(app, settings)
    # Counted and timed around Flask, not in its request hooks: those cost ~20 µs per request.
    static_routes = {rule.rule for rule in app.url_map.iter_rules() if "<" not in rule.rule}
    direct = DirectInvocations(app.wsgi_app, store, settings)
    app.wsgi_app = CountedApp(direct, static_routes)  # type: ignore[method-assign]  # Flask's way to wrap it
    return app


def predict_with(served: Served, piece_bytes: int) -> Response:
    """The request being served, answered by ``served``'s handler (its step times left for CountedApp).
    A body larger than ``piece_bytes`` goes to a handler that reads in pieces as a stream, unread."""
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not five (~3 µs)
    length = current.content_length or 0
    stream = None
    if length > piece_bytes and served.reads_in_pieces:
        stream = BodyStream(current.stream.read, length, piece_bytes)
    body = b"" if stream is not None else current.get_data(cache=False)
    return as_response(handler_answer(served, body, current.headers, current.query_string, current.environ, stream))


def handler_answer(
    served: Served,
    body: bytes,
    headers: EnvironHeaders,
    query_string: bytes,
    environ: dict[str, Any],
    stream: BodyStream | None = None,
) -> InferenceResponse:
    """The one answer path: ``served``'s handler answers the request (its step times left in
    ``environ`` for :class:`CountedApp`). Flask's route and :class:`DirectInvocations` both end here."""
    answer = served.transform(
        InferenceRequest(
            body=body,
            content_type=headers.get("Content-Type"),
            accept=headers.get("Accept"),
            headers=cast("Mapping[str, str]", headers),  # Werkzeug's: case-insensitive, read-only
            query_string=query_string,
            stream=stream,
        )
    )
    if answer.steps is not None:  # recorded with the request's other metrics by CountedApp
        environ[STEPS_KEY] = answer.steps
    return answer


def as_response(answer: InferenceResponse) -> Response:
    response = Response(answer.body, status=answer.status, content_type=answer.content_type)
    if answer.headers:
        response.headers.update(answer.headers)
    return response


def plain_status_line(answer: InferenceResponse) -> str | None:
    """The status line Werkzeug would send for ``answer``, when its response would be exactly
    Content-Type and Content-Length with the body (no extra headers, no status whose body or
    headers Werkzeug rewrites, a Content-Type it would accept); None otherwise."""
    status = answer.status
    unusual = answer.headers or status in (204, 304, 412) or status < 200
    if unusual or "\n" in answer.content_type or "\r" in answer.content_type:
        return None
    return _STATUS_LINES.get(status)


#: Werkzeug's status lines ("400 BAD REQUEST"), for the statuses a handler answers.
_STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in HTTP_STATUS_CODES if code >= 200}


def _add_routes(app: Flask, settings: ServingSettings, runtime: Runtime, store: ModelStore) -> None:
    """SageMaker's routes, and the operators' (``/stats``, ``/metrics``)."""
    batch_parameters = orjson.dumps(execution_parameters(settings))
    compile_job = [CompileJobCollector(runtime.compile_status)] if runtime.compile_status is not None else []
    # Collectors read at scrape time: the compile job's state, and in multi-model mode each loaded model's figures.
    collectors = [*compile_job, *store.collectors]

    @app.get("/ping")
    def ping() -> Response:
        """What a worker says of itself; behind ``serve``, nginx answers /ping (:mod:`.health`)."""
        problem = store.ready()
        if problem is None:
            return Response(b"", status=200)
        return _render_error(errors.ModelUnavailable(problem))

    @app.post("/invocations")
    def invocations() -> Response:
        return predict_with(store.model_for(request.headers.get(TARGET_MODEL_HEADER)), settings.body_piece_bytes)

    @app.get("/execution-parameters")
    def batch_execution_parameters() -> Response:
        return Response(batch_parameters, status=200, content_type="application/json")

    @app.get("/stats")
    def stats() -> Response:
        return _json(store.stats())

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        text = exposition.metrics_text(runtime.metrics_dir, collectors)
        return Response(text, status=200, content_type=exposition.CONTENT_TYPE)


def _http_error(error: HTTPException, method: str, path: str, max_payload_mb: int) -> Response:
    """Werkzeug's HTTP errors (no route, wrong method, too large, a body cut short) as our JSON errors."""
    kind = _HTTP_ERRORS.get(error.code or 500)
    if kind is errors.RouteNotFound:
        return _render_error(kind(f"no route {method} {path}; use POST /invocations or GET /ping"))
    if kind is errors.PayloadTooLarge:
        return _render_error(kind(f"the request body is larger than {max_payload_mb} MB (SAGEMAKER_MAX_PAYLOAD_IN_MB)"))
    if kind is not None:
        return _render_error(kind(f"{method} is not allowed on {path}"))
    other = errors.ServingError(error.description or error.name)
    other.status, other.code = error.code or 500, "http_error"
    return _render_error(other)


def _add_error_handlers(app: Flask, settings: ServingSettings) -> None:
    """Every error as the one JSON shape (:func:`_render_error`); a bug's trace to the log only."""

    @app.errorhandler(errors.ServingError)
    def serving_error(error: errors.ServingError) -> Response:
        return _logged_error(error, request.method, request.path)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return _http_error(error, request.method, request.path, settings.max_payload_mb)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        return _unexpected_error(request.method, request.path)


class DirectInvocations:
    """WSGI: a ``POST /invocations`` whose body has a Content-Length the handler reads whole goes
    straight to :func:`handler_answer`, past Flask's request context, URL map and hooks (~60 µs of a
    one-row request's ~140 µs in-process: ``bench/hops.py``). Everything else (other routes, a body
    in pieces or too large, chunked bodies) goes to Flask. The answer has the same bytes as Flask's
    route would send (a plain one without building a Werkzeug response), with the same errors and
    log lines (a test compares both paths byte for byte)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], store: ModelStore, settings: ServingSettings) -> None:
        self.app = app
        self.store = store
        self.max_payload_mb = settings.max_payload_mb
        self.largest_body = min(settings.body_piece_bytes, settings.max_payload_bytes)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        if (
            environ.get("PATH_INFO") != "/invocations"
            or environ.get("REQUEST_METHOD") != "POST"
            or not length
            or not length.isdigit()
            or int(length) > self.largest_body
        ):
            return self.app(environ, start_response)
        headers = EnvironHeaders(environ)
        try:
            served = self.store.model_for(headers.get(TARGET_MODEL_HEADER))
            body = environ["wsgi.input"].read(int(length))
            if len(body) < int(length):
                raise ClientDisconnected()
            query_string = environ.get("QUERY_STRING", "").encode("latin-1")
            answer = handler_answer(served, body, headers, query_string, environ)
            status_line = plain_status_line(answer)
            if status_line is not None:  # what Werkzeug's response would send, without building one (~6 µs)
                start_response(
                    status_line, [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))]
                )
                return [answer.body]
            response = as_response(answer)
        except errors.ServingError as error:
            response = _logged_error(error, "POST", "/invocations")
        except HTTPException as error:
            response = _http_error(error, "POST", "/invocations", self.max_payload_mb)
        except Exception:  # noqa: BLE001 - a bug: logged with its trace, a generic 500 answered
            response = _unexpected_error("POST", "/invocations")
        return response(environ, start_response)


class CountedApp:
    """WSGI middleware: the request's id for everything done while serving it (and in the
    response when it was made here, for nginx's access line), and one
    :func:`~..observability.metrics.request_answered` per response, with the handler's
    step times when it predicted."""

    def __init__(self, app: Callable[..., Iterable[bytes]], static_routes: set[str]) -> None:
        self.app = app
        self.static_routes = static_routes

    def route(self, path: str) -> str:
        """The URL rule a path matches, as a label (bounded: never the path itself)."""
        if path in self.static_routes:
            return path
        if path.startswith("/models/") and "/models" in self.static_routes:  # multi-model routes
            return "/models/<path:name>/invoke" if path.endswith("/invoke") else "/models/<path:name>"
        return "unmatched"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = perf_counter()
        request_ids.begin(environ.get(request_ids.ENVIRON_KEY))
        answered: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            made = request_ids.made()
            if made:
                headers.append((request_ids.HEADER, made))
            answered.append(status)
            answered.append(headers)
            return start_response(status, headers, exc_info)

        try:
            body = self.app(environ, start)
        finally:
            request_ids.end()
        if not answered:
            return body
        return RecordedWhenClosed(body, lambda: self.record(environ, answered, started))

    def record(self, environ: dict[str, Any], answered: list[Any], started: float) -> None:
        status, headers = answered
        response_bytes = next((value for name, value in headers if name == "Content-Length"), "0")
        request_bytes = int(environ.get("CONTENT_LENGTH") or 0)
        metrics.request_answered(
            environ.get("REQUEST_METHOD", ""),
            self.route(environ.get("PATH_INFO", "")),
            int(status[:3]),
            content_type_label(environ.get("CONTENT_TYPE")),
            request_bytes,
            int(response_bytes),
            perf_counter() - started,
            environ.get(STEPS_KEY),
        )
        if request_bytes >= TRIM_AFTER_BYTES:  # the answer is sent: give the body's memory back (heap.py)
            release_freed_memory()


class RecordedWhenClosed:
    """A response body that records its request's metrics when the server closes it, which a
    WSGI server does after the body is sent: the caller does not wait for the recording (at one
    connection it was ~15 µs of the latency with the caches cold, bench/run.py)."""

    __slots__ = ("body", "record")

    def __init__(self, body: Iterable[bytes], record: Callable[[], None]) -> None:
        self.body = body
        self.record = record

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.record()


def _json(document: object, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status=status, content_type="application/json")


def _add_multi_model_routes(app: Flask, store: MultiModelStore, piece_bytes: int) -> None:
    """SageMaker's multi-model container API (load, list, describe, unload, invoke)."""

    @app.post("/models")
    def load_model() -> Response:
        entry = store.load(request.get_data(cache=False))
        return _json({"status": "loaded", **entry.public()})

    @app.get("/models")
    def list_models() -> Response:
        return _json(store.page(request.args.get("next_page_token"), request.args.get("limit")))

    @app.get("/models/<path:name>")
    def describe_model(name: str) -> Response:
        return _json(store.describe(name))

    @app.delete("/models/<path:name>")
    def unload_model(name: str) -> Response:
        store.unload(name)
        return _json({"status": "unloaded", "modelName": name})

    @app.post("/models/<path:name>/invoke")
    def invoke_model(name: str) -> Response:
        log.info("invoke %s (%s: %s)", name, TARGET_MODEL_HEADER, request.headers.get(TARGET_MODEL_HEADER, "-"))
        return predict_with(store.get(name), piece_bytes)
