"""The id of the request being served, for its log lines, its error body and nginx's access line.

SageMaker's ``X-Amzn-SageMaker-Inference-Id``, when the caller set one, reaches the app as
any request header does, and is the id. When the caller set none, the id is made only when
something needs it (an error body, a log line written while serving, user code asking for
it) and the response then carries it in that header, which nginx writes in its access line;
a request nothing asked about is logged under nginx's own ``$request_id``. So the access
line, the app's lines and the caller always quote one id, and the common request pays
nothing for it (forwarding nginx's id to every request cost ~10 µs of worker CPU: gunicorn
parses each header in Python).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

HEADER = "X-Amzn-SageMaker-Inference-Id"
ENVIRON_KEY = "HTTP_" + HEADER.upper().replace("-", "_")  # the header in a WSGI environ

# None outside a request; "" in a request whose id was not asked for yet; else the id.
_current: ContextVar[str | None] = ContextVar("request_id", default=None)
_made: ContextVar[str] = ContextVar("request_id_made", default="")


def begin(sent: str | None) -> None:
    """A request starts; ``sent`` is the caller's id header, if any."""
    _current.set(sent or "")


def end() -> None:
    _current.set(None)
    if _made.get():
        _made.set("")


def current() -> str:
    """The id of the request this thread serves, made now if the caller sent none ("" outside a request)."""
    request_id = _current.get()
    if request_id == "":
        request_id = uuid.uuid4().hex
        _current.set(request_id)
        _made.set(request_id)
    return request_id or ""


def made() -> str:
    """The id made here for this request ("" if none was): its response must carry it."""
    return _made.get()
