"""The HTTP front: nginx's configuration and gunicorn's command line, rendered from settings.

nginx and gunicorn each refuse some requests on their own. To answer every such request
the same way, both are configured here, together: gunicorn's request-line and header
limits are higher than nginx's (so nginx, which answers in JSON, refuses first), and both
render their own refusals from the one table in :data:`errors.FRONT_ERRORS`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import FRONT_ERRORS, front_error_body
from ..settings import ServingSettings
from .health import health_directory

PROGRAM_DIR = Path(__file__).resolve().parents[2]
NGINX_TEMPLATE = PROGRAM_DIR / "nginx.conf.template"
#: SageMaker kills 30 s after SIGTERM; leave a margin for the supervisor itself.
GRACE_SECONDS = 25

#: nginx's ``large_client_header_buffers``: the request line and each header must fit one
#: buffer, all headers together the lot. gunicorn's own limits are set above these.
HEADER_BUFFERS, HEADER_BUFFER_KB = 4, 8
GUNICORN_LIMITS = (
    "--limit-request-line",
    "0",  # unlimited: nginx bounds it at HEADER_BUFFER_KB
    "--limit-request-fields",
    "32768",  # gunicorn's maximum; nginx bounds the total size
    "--limit-request-field_size",
    str(2 * HEADER_BUFFER_KB * 1024),
)
#: The statuses nginx itself may answer (494 is its "header too large", sent as 431).
NGINX_OWN_STATUSES = (400, 405, 411, 413, 414, 494, 500, 501, 502, 504, 505)


def front_limits(settings: ServingSettings | None = None) -> dict[str, object]:
    """The values the front's error messages quote."""
    limits: dict[str, object] = {"header_kb": HEADER_BUFFER_KB, "headers_kb": HEADER_BUFFERS * HEADER_BUFFER_KB}
    if settings is not None:
        limits.update(max_body_mb=settings.max_payload_mb, timeout=settings.timeout_seconds)
    return limits


def _nginx_string(text: bytes) -> str:
    """A single-quoted nginx string literal (``$`` starts a variable: no message may hold one)."""
    return "'" + text.decode().replace("\\", "\\\\").replace("'", "\\'") + "\\n'"


def _with_request_id(body: bytes) -> bytes:
    """An nginx error body that quotes the request's id, as the app's error bodies do."""
    assert body.endswith(b"}") and b"$" not in body, body
    return body[:-1] + b',"request_id":"$error_request_id"}'


def nginx_error_pages(settings: ServingSettings) -> str:
    """``error_page`` directives and their internal locations, one per status nginx answers itself."""
    limits = front_limits(settings)
    blocks = []
    for status in NGINX_OWN_STATUSES:
        sent = 431 if status == 494 else status
        assert sent in FRONT_ERRORS, sent
        blocks.append(
            f"error_page {status} ={sent} /__errors/{status};\n"
            f"        location = /__errors/{status} {{\n"
            f"            internal;\n"
            f"            default_type application/json;\n"
            f"            return {sent} {_nginx_string(_with_request_id(front_error_body(sent, limits)))};\n"
            f"        }}"
        )
    return "\n        ".join(blocks)


def render_nginx_conf(settings: ServingSettings, run_dir: Path, socket: Path, access_log: str = "/dev/stdout") -> str:
    values = {
        "RUN_DIR": str(run_dir),
        "HEALTH_DIR": str(health_directory(run_dir)),
        "SOCKET": str(socket),
        "LISTEN": settings.listen_address,
        "PORT": str(settings.port),
        "MAX_BODY_MB": str(settings.max_payload_mb),
        "BODY_BUFFER_MB": str(min(settings.max_payload_mb, 16)),
        "HEADER_BUFFERS": f"{HEADER_BUFFERS} {HEADER_BUFFER_KB}k",
        # gunicorn's own timeout kills a stuck worker first; nginx waits a little longer.
        "PROXY_TIMEOUT": str(settings.timeout_seconds + 5),
        "GRACE": str(GRACE_SECONDS),
        "ACCESS_LOG": access_log,
        "ACCESS_FORMAT": "sagemaker_json" if settings.log_format == "json" else "sagemaker",
        "ERROR_PAGES": nginx_error_pages(settings),
    }
    text = NGINX_TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def gunicorn_command(
    settings: ServingSettings, socket: Path, run_dir: Path, settings_file: Path, log_config: Path | None = None
) -> list[str]:
    """``log_config``: gunicorn's logging as a dictConfig JSON file (``LOG_FORMAT=json``)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(PROGRAM_DIR),
        "--config",
        "python:lightgbm_container.serving.gunicorn_config",
        "--bind",
        f"unix:{socket}",
        "--workers",
        str(settings.workers),
        "--worker-class",
        "lightgbm_container.serving.sync_worker.Worker",
        "--threads",
        str(settings.server_threads),
        "--timeout",
        str(settings.timeout_seconds),
        "--graceful-timeout",
        str(GRACE_SECONDS),
        "--log-level",
        settings.log_level.lower(),
        *(["--log-config-json", str(log_config)] if log_config is not None else []),
        "--worker-tmp-dir",
        str(run_dir),
        "--no-control-socket",
        *GUNICORN_LIMITS,
        f"wsgi:app_from_settings({str(settings_file)!r})",
    ]
