"""Where one single-row request's time goes, hop by hop (a profile, not a test).

Each hop is measured from inside the one before it, on the same 100-tree, 13-feature model and
the same one-row CSV body as ``bench/run.py``, so the differences between lines are each hop's cost:

1. ``predict``: ``Booster.predict`` of one row (one thread), and the compiled trees' call.
2. ``handler``: the built-in handler's ``transform`` (decode, validate, predict, encode), in-process.
3. ``wsgi``: the whole WSGI application (metrics, request id, Flask routing, Werkzeug request and
   response objects) called with a prepared environ, in-process.
4. ``gunicorn``: a real ``serve`` (1 worker): HTTP over gunicorn's unix socket, a new connection
   per request, exactly as nginx talks to it.
5. ``nginx``: the same server through nginx on TCP, one keep-alive client connection.

Each figure is the median over interleaved rounds of the per-round median of ``--requests``
sequential calls; the raw-socket client is a few lines so its own cost stays small.

    .venv/bin/python bench/hops.py                 # about 30 s
    .venv/bin/python bench/hops.py --serve /tmp/before/container/program/serve   # another build
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

import measure
import processes
import servers
import workload

PROGRAM_DIR = servers.REPO_DIR / "container" / "program"
#: Median seconds of ``count`` calls, after 50 unmeasured ones (caches, branch predictors, the first import).
timed = partial(measure.median_call_seconds, warm_up=50)


def http_request(body: bytes, keep_alive: bool) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
        b"Connection: " + connection + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def read_response(sock: socket.socket) -> bool:
    """Read one whole HTTP response (Content-Length framed); fails on anything but 200.
    Returns whether the server closes the connection after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed early: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    closing = b"\r\nconnection: close" in head.lower()
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(head.decode(errors="replace"))
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return closing


def in_process(model_root: Path, body: bytes, count: int) -> dict[str, float]:
    """Hops 1-3, in this process, with the app serve's workers run (LightGBM, then compiled trees)."""
    sys.path.insert(0, str(PROGRAM_DIR))
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="hops-metrics-"))
    import lightgbm

    from lightgbm_container.contract.handler import InferenceRequest
    from lightgbm_container.serving.app import create_app
    from lightgbm_container.serving.store import create_store
    from lightgbm_container.settings import Runtime, serving_settings

    booster = lightgbm.Booster(model_file=str(model_root / "model" / "model.txt"))
    row = np.loadtxt(io.BytesIO(body), delimiter=",", ndmin=2)
    figures = {"predict: Booster.predict, 1 row": timed(lambda: booster.predict(row, num_threads=1), count)}
    try:
        import lleaves

        compiled = lleaves.Model(model_file=str(model_root / "model" / "model.txt"))
        compiled.compile(cache=str(model_root / "compiled.o"))
        figures["predict: compiled trees, 1 row"] = timed(lambda: compiled.predict(row, n_jobs=1), count)
    except ImportError:
        pass
    env = {
        "SAGEMAKER_BASE_DIR": str(model_root),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "LIGHTGBM_PREDICTOR": "lightgbm",
    }
    settings = serving_settings(env)
    runtime = Runtime()
    store = create_store(settings, runtime)
    app = create_app(settings, runtime, store)
    served = store.model_for(None)
    figures["handler: transform, 1 row (LightGBM)"] = timed(
        lambda: served.transform(InferenceRequest(body=body, content_type="text/csv", accept="text/csv")), count
    )

    def call_app() -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/invocations",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "8080",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "text/csv",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_ACCEPT": "text/csv",
            "HTTP_HOST": "localhost",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        answer = app(environ, lambda status, headers, exc_info=None: None)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()

    figures["wsgi: the whole app, 1 row (LightGBM)"] = timed(call_app, count)
    return figures


def through_servers(serve: Path, model_root: Path, body: bytes, count: int, run_dir: Path) -> dict[str, float]:
    """Hops 4-5 on a real serve with one worker (compiled trees, as served)."""
    run_dir.mkdir(parents=True)
    before = set(Path(tempfile.gettempdir()).glob("lightgbm-serve-*/gunicorn.sock"))
    try:
        server = servers.start_ours(serve, model_root, run_dir, 1, 120.0, {}, name="hops")
        (gunicorn_socket,) = set(Path(tempfile.gettempdir()).glob("lightgbm-serve-*/gunicorn.sock")) - before
        unix_request = http_request(body, keep_alive=False)

        def over_unix_socket() -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(gunicorn_socket))
                sock.sendall(unix_request)
                read_response(sock)

        port = int(server.base_url.rsplit(":", 1)[1])
        tcp_request = http_request(body, keep_alive=True)
        held: list[socket.socket] = []

        def through_nginx() -> None:
            if not held:  # nginx ends a keep-alive connection after keepalive_requests (1,000) requests
                held.append(socket.create_connection(("127.0.0.1", port)))
                held[0].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            held[0].sendall(tcp_request)
            if read_response(held[0]):
                held.pop().close()

        figures = {}
        figures["gunicorn: unix socket, new connection, 1 row (compiled)"] = timed(over_unix_socket, count)
        figures["nginx: TCP keep-alive, 1 row (compiled)"] = timed(through_nginx, count)
        return figures
    finally:
        processes.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=Path, default=servers.DEFAULT_SERVE, help="the serve to measure")
    parser.add_argument("--requests", type=int, default=2000, help="calls per hop per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args(argv)
    servers.ensure_tools()
    processes.install_cleanup()
    with tempfile.TemporaryDirectory(prefix="bench-hops-") as tmp:
        root = Path(tmp)
        work = workload.build_workload(root / "ml", root / "payloads")
        body = work.payloads[1].body
        rounds: dict[str, list[float]] = {}
        for number in range(args.rounds):
            figures = {
                **in_process(work.root, body, args.requests),
                **through_servers(args.serve, work.root, body, args.requests, root / f"round-{number}"),
            }
            for name, seconds in figures.items():
                rounds.setdefault(name, []).append(seconds)
    print(f"\n{args.serve}: one 1-row CSV request, median of {args.rounds} rounds x {args.requests} calls\n")
    print("| hop | µs | this hop adds (µs) |\n|---|---:|---:|")
    previous = None
    for name, values in rounds.items():
        micros = statistics.median(values) * 1e6
        added = "" if previous is None or name.startswith("predict") else f"{micros - previous:,.0f}"
        print(f"| {name} | {micros:,.1f} | {added} |")
        previous = micros if not name.startswith("predict: compiled") else previous
    return 0


if __name__ == "__main__":
    sys.exit(main())
