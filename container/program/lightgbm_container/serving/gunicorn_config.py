"""gunicorn's configuration module: ``gunicorn --config python:lightgbm_container.serving.gunicorn_config``.

gunicorn answers a request it cannot parse itself, before the app, with an HTML page written
by ``gunicorn.util.write_error``. nginx in front refuses almost all of those first (see
:mod:`.http_front`), but gunicorn is stricter on a few points, rightly: a repeated
Content-Type (RFC 9110 section 5.3) or a control character in a header value. That one
writer is replaced here, in the master before any worker forks, so those answers carry
the same JSON body as every other error. Imports nothing heavy: no LightGBM, no OpenMP.
"""

from __future__ import annotations

import socket

import gunicorn.util

from ..errors import front_error_body
from .http_front import front_limits

_LIMITS = front_limits()


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    body = front_error_body(status_int, _LIMITS, detail=mesg)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn.util.write_error = write_json_error
