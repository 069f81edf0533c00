"""Log lines: plain by default (CloudWatch reads them line by line), or one JSON object per
line with ``LOG_FORMAT=json``.

Both formats carry the same facts. JSON names them, the same way in every process:
``time``, ``level``, ``logger``, ``pid``, ``message``, ``request_id`` on a request's lines,
and whatever a line passes as ``extra`` (``method``, ``path``, ``status``, ``target_model``...).
nginx's access line (:mod:`..serving.http_front`) and gunicorn's own lines
(:func:`gunicorn_log_config`) use the same names; lines a process prints by other means
(a user's ``print``, LightGBM's C++ warnings, nginx's error log) are wrapped by ``serve``
(:func:`wrap_line`), so in JSON mode every line parses.

The JSON comes from python-json-logger's orjson formatter, not from hand-written code.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from pythonjsonlogger.orjson import OrjsonFormatter

from . import request_ids

PLAIN, JSON = "plain", "json"
FORMATS = (PLAIN, JSON)

PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
#: LogRecord attribute -> JSON field name.
JSON_FIELDS = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid", "message": "message"}


def iso_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line, with :data:`JSON_FIELDS` and the record's extras."""

    def __init__(self) -> None:
        super().__init__(" ".join(f"%({name})s" for name in JSON_FIELDS), rename_fields=dict(JSON_FIELDS))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return iso_time(record.created)


class PlainFormatter(logging.Formatter):
    """The classic line, with `` request_id=...`` at its end when a request is being served."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class RequestIdFilter(logging.Filter):
    """Stamps every record emitted while a request is served with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = request_ids.current()
            if request_id:
                record.request_id = request_id
        return True


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == JSON else PlainFormatter()


def configure_logging(level: str = "INFO", log_format: str = PLAIN, stream: IO[str] | None = None) -> None:
    """The root logger of this process: one handler on stdout, in ``log_format``."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def gunicorn_log_config(level: str) -> dict[str, Any]:
    """gunicorn's ``--log-config-json`` for JSON mode: its own lines as JSON, once each."""
    json_formatter = {"()": f"{__name__}.JsonFormatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": json_formatter},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stdout"], "propagate": False},
        },
    }


#: nginx error-log severities -> Python level names.
_NGINX_LEVELS = {
    b"[debug]": "DEBUG",
    b"[info]": "INFO",
    b"[notice]": "INFO",
    b"[warn]": "WARNING",
    b"[error]": "ERROR",
    b"[crit]": "CRITICAL",
    b"[alert]": "CRITICAL",
    b"[emerg]": "CRITICAL",
}


def wrap_line(line: bytes, logger: str, level: str, pid: int, created: float) -> bytes:
    """A line some process printed, as a JSON log line (a line that is one already is kept)."""
    text = line.rstrip(b"\r\n")
    if text.startswith(b"{") and text.endswith(b"}"):
        return text + b"\n"
    for marker, nginx_level in _NGINX_LEVELS.items():
        if marker in text[:40]:
            level = nginx_level
            break
    record = {
        "time": iso_time(created),
        "level": level,
        "logger": logger,
        "pid": pid,
        "message": text.decode("utf-8", errors="replace"),
    }
    return orjson.dumps(record) + b"\n"


def forward_lines(stream: IO[bytes], logger: str, level: str, out: IO[bytes] | None = None) -> None:
    """Copy a child process' output to ours, line by line, each line JSON (``serve`` runs one
    thread per stream in JSON mode; it ends when the child closes the stream)."""
    target = out or sys.stdout.buffer
    pid = os.getpid()
    for line in iter(stream.readline, b""):
        target.write(wrap_line(line, logger, level, pid, time.time()))
        target.flush()


def relay_lines(stream: IO[bytes], out_fd: int = 1) -> None:
    """Copy a child's output to our file descriptor ``out_fd`` unchanged, in whole lines.

    For nginx's access log: opened as ``/dev/stdout`` by nginx itself, a redirected stdout
    (``serve > file``) would be a second open file with its own offset, and the workers' lines
    would overwrite nginx's. Through a pipe relayed here, every line goes through our one file
    description. Whole lines only, so no other process' line lands inside one; a chunk of
    many lines is one write (cheap at thousands of requests a second)."""
    source = stream.fileno()
    pending = b""
    while chunk := os.read(source, 65536):
        pending += chunk
        end = pending.rfind(b"\n") + 1
        if end:
            _write_all(out_fd, pending[:end])
            pending = pending[end:]
    if pending:
        _write_all(out_fd, pending + b"\n")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
