"""Typed errors: each knows its HTTP status, a stable code and a message for the caller.

SageMaker returns a non-2xx body verbatim to the client as ``ModelError``; the body is the
caller's only clue, so every message says what was wrong and what was expected.
Rendering to JSON happens in exactly one place (:func:`error_body`).
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

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


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most resembles (a misspelling's likely intent), if any is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if not close and name.lower() != name:
        close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def error_body(error: ServingError) -> bytes:
    """The one JSON shape every error response uses."""
    body: dict[str, Any] = {"error": error.code, "message": error.message}
    body.update(error.details)
    return orjson.dumps(body)


class TrainingError(Exception):
    """A training failure caused by the job's input (data, hyperparameters, configuration).

    Its message goes to ``/opt/ml/output/failure`` and becomes the job's FailureReason, so it
    must say what to fix in plain words.
    """
