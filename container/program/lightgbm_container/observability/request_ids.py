"""The id of the request being served, for its log lines and its error body.

nginx forwards SageMaker's ``X-Amzn-SageMaker-Inference-Id`` when the caller set one, else
a fresh id of its own (``$request_id``), in that same header, and writes it in its access
line; so the app, the access log and the caller all quote one id. Without nginx in front
(``gunicorn wsgi:app``, Flask's test client) the app makes one up.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

HEADER = "X-Amzn-SageMaker-Inference-Id"
ENVIRON_KEY = "HTTP_" + HEADER.upper().replace("-", "_")  # the header in a WSGI environ

_current: ContextVar[str] = ContextVar("request_id", default="")


def begin(sent: str | None) -> str:
    """Make ``sent`` (or a new id) the current request's id; returns it."""
    request_id = sent or uuid.uuid4().hex
    _current.set(request_id)
    return request_id


def end() -> None:
    _current.set("")


def current() -> str:
    """The id of the request this thread is serving ("" outside a request)."""
    return _current.get()
