"""Typed errors: each knows its HTTP status, a stable code and a message for the caller.

SageMaker returns a non-2xx body verbatim to the client as ``ModelError``; the body is the
caller's only clue, so every message says what was wrong and what was expected.
Rendering to JSON happens in exactly one place (:func:`error_body`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import orjson


class ServingError(Exception):
    """An error the caller can act on; rendered as ``{"error": code, "message": ...}``."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(ServingError):
    status = 400
    code = "bad_request"


class EmptyBody(BadRequest):
    code = "empty_body"


class ModelNotFound(ServingError):
    status = 404
    code = "model_not_found"


class RouteNotFound(ServingError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ServingError):
    status = 405
    code = "method_not_allowed"


class NotAcceptable(ServingError):
    status = 406
    code = "not_acceptable"


class Conflict(ServingError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ServingError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServingError):
    status = 415
    code = "unsupported_media_type"


class InsufficientStorage(ServingError):
    status = 507
    code = "insufficient_memory"


class ModelUnavailable(ServingError):
    status = 503
    code = "model_unavailable"


class UserCodeError(ServingError):
    """A user function (``inference.py``, an MMS custom service) raised.

    The status is the exception's own when it carries one (the SageMaker Inference Toolkit's
    ``status_code``, MMS's ``PredictionException.error_code``), 507 for a MemoryError, else
    500. Unlike the toolkit, the body never holds the trace (that goes to the log): it names
    the function and the exception, in the same JSON shape as every other error.
    """

    code = "user_code_error"

    def __init__(self, function: str, exc: BaseException) -> None:
        status = _carried_status(exc)
        if isinstance(exc, MemoryError):
            status = 507
        text = getattr(exc, "message", None) if status is not None else None
        text = str(text if text else exc) or type(exc).__name__
        super().__init__(f"{function} raised {type(exc).__name__}: {text}", type=type(exc).__name__, function=function)
        self.status = status or 500


def _carried_status(exc: BaseException) -> int | None:
    for attribute in ("status_code", "error_code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
            return value
    return None


class UserCodeSetupError(Exception):
    """User code that cannot run at all (missing module, wrong signatures): ``serve`` stops with the reason."""


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most resembles (a misspelling's likely intent), if any is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not close and name.lower() != name:
        close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def error_body(error: ServingError, request_id: str = "") -> bytes:
    """The one JSON shape every error response uses; ``request_id`` lets a caller quote the
    request to whoever reads the log (the same id is on its log lines)."""
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    body.update(error.details)
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


#: What the HTTP front (nginx, or gunicorn behind it) answers on its own, before the app
#: sees the request: status -> (code, message). Rendered into nginx's ``error_page``
#: locations and into gunicorn's error writer, so those answers have the same JSON shape
#: as the app's. ``{placeholders}`` are the limits in force (see ``front_error_body``).
FRONT_ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "bad_request",
        (
            "the HTTP request is malformed (its request line, a header, a URL escape or the chunked body); nothing "
            "reached the model"
        ),
    ),
    405: ("method_not_allowed", "this HTTP method is not allowed; use POST /invocations or GET /ping"),
    411: ("length_required", "send a Content-Length header or a chunked body"),
    413: (
        "payload_too_large",
        (
            "the request body is larger than the {max_body_mb} MB limit; split it into smaller requests "
            "(SAGEMAKER_MAX_PAYLOAD_IN_MB raises the limit, up to 100 MB for Batch Transform)"
        ),
    ),
    414: ("uri_too_long", "the request line is longer than {header_kb} KB; send the data in the body"),
    417: ("expectation_failed", "the Expect header is not supported; only 'Expect: 100-continue' is"),
    431: (
        "request_header_fields_too_large",
        "a request header is longer than {header_kb} KB, or all of them together exceed {headers_kb} KB",
    ),
    500: ("internal_error", "the HTTP server failed while handling the request; see the container log"),
    501: ("not_implemented", "this Transfer-Encoding is not supported; send the body as it is, or chunked"),
    502: (
        "model_server_unavailable",
        (
            "the model server did not answer: it is starting, restarting, or a worker died or exceeded the "
            "{timeout} s timeout (SAGEMAKER_MODEL_SERVER_TIMEOUT); see the container log"
        ),
    ),
    504: (
        "model_server_timeout",
        (
            "the model server took longer than {timeout} s (SAGEMAKER_MODEL_SERVER_TIMEOUT); send smaller requests "
            "or raise the timeout"
        ),
    ),
    505: ("http_version_not_supported", "this HTTP version is not supported; use HTTP/1.1 or HTTP/1.0"),
}


def front_error_body(status: int, limits: dict[str, Any], detail: str = "") -> bytes:
    """The JSON body for a status the HTTP front answers itself (see :data:`FRONT_ERRORS`)."""
    code, message = FRONT_ERRORS.get(status, ("http_error", "the HTTP server refused the request"))
    message = message.format(**limits)
    if detail:
        message = f"{message} ({detail})"
    return orjson.dumps({"error": code, "message": message})


class TrainingError(Exception):
    """A training failure caused by the job's input (data, hyperparameters, configuration).

    Its message goes to ``/opt/ml/output/failure`` and becomes the job's FailureReason, so it
    must say what to fix in plain words.
    """
