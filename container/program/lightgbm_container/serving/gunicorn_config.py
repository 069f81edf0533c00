"""gunicorn's configuration module: ``gunicorn --config python:lightgbm_container.serving.gunicorn_config``.

gunicorn answers a request it cannot parse itself, before the app, with an HTML page written
by ``gunicorn.util.write_error``. nginx in front refuses almost all of those first (see
:mod:`.http_front`), but gunicorn is stricter on a few points, rightly: a repeated
Content-Type (RFC 9110 section 5.3) or a control character in a header value. That one
writer is replaced here, in the master before any worker forks, so those answers carry
the same JSON body as every other error.

It also imports, once in the master, the libraries every worker imports anyway (numpy,
pandas, LightGBM, llvmlite, Flask and our request path): the forked workers share those
pages instead of each holding its own copy (about 50 MB PSS less per worker, measured with
bench/startup.py). Importing starts no threads: LightGBM's OpenMP pool and LLVM's JIT are
only created by the first prediction and the first compiled model, in the workers. When the
workers may unpickle an estimator or run user code (the hand-off says so), scikit-learn goes
on the path first, so LightGBM's estimators are whole (:mod:`..packages`), and is shared too.

Its hooks keep the metrics honest about workers (:mod:`..observability.metrics`): a worker
that exits takes its live gauges with it, a replacement counts as a restart, a worker
publishes its batched updates before it exits, and a worker gunicorn kills for running past
the timeout says so first.
"""

from __future__ import annotations

import logging
import re
import socket
from importlib import import_module
from pathlib import Path
from typing import Any

import gunicorn.util
from prometheus_client import multiprocess

from ..errors import front_error_body
from ..observability import metrics
from ..packages import use_pickle_packages
from ..settings import read_handoff
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


#: What a worker imports in any mode, heaviest first; the app itself is still built per worker.
SHARED_IMPORTS = (
    "numpy",
    "pandas",
    "scipy.sparse",
    "lightgbm",
    "llvmlite.binding",
    "lleaves",
    "flask",
    "lightgbm_container.serving.app",
    "lightgbm_container.serving.store",
    "lightgbm_container.builtin.handler",
)


#: What a worker that may unpickle an estimator or a Pipeline imports besides.
PICKLE_IMPORTS = ("joblib", "sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing", "sklearn.impute")


def share_imports(modules: tuple[str, ...]) -> None:
    for module in modules:
        try:
            import_module(module)
        except Exception:
            logging.getLogger(__name__).warning("could not import %s before forking the workers", module, exc_info=True)


def on_starting(server: Any) -> None:
    """In the master, before any worker: the shared imports, with scikit-learn first when the
    hand-off file the app is built from says the workers may need it."""
    found = re.search(r"app_from_settings\('([^']+)'\)", getattr(server.app, "app_uri", "") or "")
    if found is not None and read_handoff(Path(found[1]).read_text())[1].scikit_learn and use_pickle_packages():
        share_imports(PICKLE_IMPORTS)
    share_imports(SHARED_IMPORTS)


def pre_fork(server: Any, worker: Any) -> None:
    """In the master, before each worker starts: beyond the first set, it replaces one."""
    if worker.age > server.num_workers:
        metrics.WORKER_RESTARTS.inc()


def child_exit(server: Any, worker: Any) -> None:
    """In the master: the exited worker's live gauges (``lightgbm_workers``...) leave the sums."""
    if metrics.multiprocess():
        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """In a worker that is exiting: what it added up is published before it goes."""
    metrics.BATCH.publish(timeout=1.0)


def worker_abort(worker: Any) -> None:
    """In a worker gunicorn is killing for running past ``--timeout`` (a signal handler: the
    interrupted request may hold the batch's lock, so publishing waits a bounded time)."""
    metrics.WORKER_TIMEOUTS.inc()
    metrics.BATCH.publish(timeout=0.5)
