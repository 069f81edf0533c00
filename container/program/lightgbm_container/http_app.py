"""The Flask application: routes only; the work happens in :mod:`.inference`.

Every error leaves as JSON through :func:`_render_error`; a bug answers a generic 500 whose
trace goes to the log, never to the caller.
"""

from __future__ import annotations

import logging

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import errors
from .inference import invoke
from .settings import ServingSettings

log = logging.getLogger(__name__)

_HTTP_ERRORS = {
    404: errors.RouteNotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


def _render_error(error: errors.ServingError) -> Response:
    return Response(errors.error_body(error), status=error.status, content_type="application/json")


def execution_parameters(settings: ServingSettings) -> dict[str, object]:
    """What Batch Transform should send: SageMaker requires concurrency x payload <= 100 MB."""
    payload = settings.max_payload_mb
    concurrency = max(1, min(settings.max_concurrent_transforms, 100 // payload))
    return {"MaxConcurrentTransforms": concurrency, "BatchStrategy": settings.batch_strategy, "MaxPayloadInMB": payload}


def create_app(settings: ServingSettings, store) -> Flask:
    app = Flask("lightgbm_container")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_payload_bytes
    batch_parameters = orjson.dumps(execution_parameters(settings))

    @app.get("/ping")
    def ping() -> Response:
        if store.ready():
            return Response(b"", status=200)
        return _render_error(errors.ModelUnavailable("the model is not loaded yet"))

    @app.post("/invocations")
    def invocations() -> Response:
        answer = invoke(store.get(), request.get_data(cache=False), request.content_type, request.headers.get("Accept"))
        return Response(answer.body, status=200, content_type=answer.media_type)

    @app.get("/execution-parameters")
    def batch_execution_parameters() -> Response:
        return Response(batch_parameters, status=200, content_type="application/json")

    @app.errorhandler(errors.ServingError)
    def serving_error(error: errors.ServingError) -> Response:
        log.info("%s %s -> %d %s", request.method, request.path, error.status, error.message)
        return _render_error(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        kind = _HTTP_ERRORS.get(error.code or 500)
        if kind is errors.RouteNotFound:
            return _render_error(kind(f"no route {request.method} {request.path}; use POST /invocations or GET /ping"))
        if kind is errors.PayloadTooLarge:
            return _render_error(kind(f"the request body is larger than {settings.max_payload_mb} MB (SAGEMAKER_MAX_PAYLOAD_IN_MB)"))
        if kind is not None:
            return _render_error(kind(f"{request.method} is not allowed on {request.path}"))
        error_class = type("HTTPError", (errors.ServingError,), {"status": error.code or 500, "code": "http_error"})
        return _render_error(error_class(error.description or error.name))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _render_error(errors.ServingError("internal error while handling the request; see the container log"))

    return app
