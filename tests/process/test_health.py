"""``/ping`` on the real `serve`: answered at once whatever the workers do, and still honest.

SageMaker replaces an instance whose ``/ping`` does not answer within 2 s; the container
promises 50 ms. Workers are kept busy with real work (contributions for many rows, calibrated
here to last about 10 s), killed, and given a ``model_fn`` that raises.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import psutil
import pytest
import requests

from support import PROGRAM, Server, free_port, json_error, program_env

PING_BOUND_SECONDS = 0.05
#: serve re-judges health every 0.1 s (serving/supervisor.py WATCH_SECONDS): a death is seen within it.
DEATH_NOTICED_SECONDS = 0.15
BUSY_SECONDS = 10.0
CONTRIBUTIONS = {"X-Amzn-SageMaker-Custom-Attributes": "output=contributions"}
TARGET = "X-Amzn-SageMaker-Target-Model"


def _rows_body(rows: int, seed: int = 0) -> bytes:
    values = np.random.default_rng(seed).normal(size=(rows, 10)) * 10 + 50
    return ("\n".join(",".join(f"{v:.3f}" for v in row) for row in values)).encode()


def _timed_ping(url: str) -> tuple[requests.Response, float]:
    """One ping on a new connection, as SageMaker's health check makes it: (response, seconds)."""
    started = time.perf_counter()
    response = requests.get(url + "/ping", timeout=5)
    return response, time.perf_counter() - started


def _calibrated_rows(server: Server, headers: dict[str, str]) -> int:
    """Rows whose contributions keep one worker busy for about BUSY_SECONDS, when every
    worker computes at once (each then gets its share of the cores)."""
    rows = 2000
    while True:
        started = time.perf_counter()
        response = server.post(_rows_body(rows), **headers)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text[:300]
        if elapsed > 0.5 or rows >= 64000:
            break
        rows *= 4
    cores = max(1, len(psutil.Process().cpu_affinity()))
    return int(rows * BUSY_SECONDS / elapsed * min(1.0, cores / server.workers))


def _occupy_and_ping(server: Server, concurrent: int, headers: dict[str, str]) -> None:
    rows = _calibrated_rows(server, headers)
    body = _rows_body(rows, seed=1)
    finished: list[float] = []

    def long_request() -> None:
        response = server.post(body, **headers)
        assert response.status_code == 200, response.text[:300]
        finished.append(time.monotonic())

    threads = [threading.Thread(target=long_request) for _ in range(concurrent)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every worker has taken its request
    pings = []
    for _ in range(20):
        pings.append(_timed_ping(server.url))
        time.sleep(0.2)
    last_ping = time.monotonic()
    for thread in threads:
        thread.join(timeout=180)
    assert len(finished) == concurrent
    assert min(finished) > last_ping, "the long requests ended before the pings: calibrate longer"
    assert all(response.status_code == 200 and response.content == b"" for response, _ in pings), pings
    slowest = max(seconds for _, seconds in pings)
    print(
        f"pings with {concurrent} busy: median {sorted(s for _, s in pings)[10] * 1000:.2f} ms, slowest {slowest * 1000:.2f} ms; "
        f"{rows} rows of contributions per request, done {min(finished) - last_ping:.1f} s after the last ping"
    )
    assert slowest < PING_BOUND_SECONDS, f"slowest ping {slowest * 1000:.1f} ms with every worker busy"


def test_ping_answers_at_once_while_every_worker_is_busy(trained_root, start_server):
    server = start_server(
        trained_root,
        SAGEMAKER_MAX_PAYLOAD_IN_MB="100",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="300",
        LIGHTGBM_PREDICTOR="lightgbm",
    )
    _occupy_and_ping(server, server.workers, CONTRIBUTIONS)


def test_multi_model_ping_answers_at_once_while_every_worker_thread_is_busy(tmp_path, trained_root, start_server):
    root = tmp_path / "mme"
    shutil.copytree(trained_root / "model", root / "models" / "diabetes" / "model")
    server = start_server(
        root,
        SAGEMAKER_MULTI_MODEL="true",
        LIGHTGBM_SERVER_THREADS="2",
        SAGEMAKER_MAX_PAYLOAD_IN_MB="100",
        SAGEMAKER_MODEL_SERVER_TIMEOUT="300",
        LIGHTGBM_PREDICTOR="lightgbm",
    )
    _occupy_and_ping(server, server.workers * 2, {**CONTRIBUTIONS, TARGET: "diabetes"})


SLOW_RELOAD = """
import os, time
import lightgbm

def model_fn(model_dir):
    marker = os.path.join(model_dir, "slow-reload")
    if os.path.exists(marker):  # a worker started after the test killed the first ones
        time.sleep(float(open(marker).read()))
    return lightgbm.Booster(model_file=os.path.join(model_dir, "model.txt"))
"""


def _workers(server: Server) -> list[psutil.Process]:
    gunicorn = [
        child for child in psutil.Process(server.process.pid).children() if "gunicorn" in " ".join(child.cmdline())
    ]
    assert len(gunicorn) == 1, gunicorn
    return gunicorn[0].children()


def test_ping_fails_while_no_worker_is_alive_until_they_are_back(tmp_path, trained_root, start_server):
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    (root / "model" / "code").mkdir()
    (root / "model" / "code" / "inference.py").write_text(SLOW_RELOAD)
    server = start_server(root)
    first = _workers(server)
    assert len(first) == server.workers
    (root / "model" / "slow-reload").write_text("3")
    for worker in first:
        worker.kill()
    killed = time.monotonic()
    time.sleep(DEATH_NOTICED_SECONDS)  # serve re-judges every 0.1 s
    answers = []
    while time.monotonic() - killed < 30:
        response, _ = _timed_ping(server.url)
        answers.append((round(time.monotonic() - killed, 2), response.status_code))
        if response.status_code == 200:
            break
        message = json_error(response, 503, "model_unavailable")["message"]
        assert "no model server worker is alive" in message or "starting" in message, message
        time.sleep(0.05)
    assert answers[0][1] == 503, f"the ping did not fail once every worker was killed: {answers}"
    assert answers[-1][1] == 200, answers
    assert answers[-1][0] >= 2.5, f"healthy again before a new worker had its model: {answers}"
    assert not {worker.pid for worker in _workers(server)} & {worker.pid for worker in first}
    assert server.post("59,2,32.1,101,157,93.2,38,4,4.8598,87").status_code == 200


def test_the_ping_says_what_serve_is_doing_before_the_workers_run(tmp_path, trained_root):
    """A requirements.txt that takes long to install: /ping answers 503 naming it, then 200."""
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    code = root / "model" / "code"
    code.mkdir()
    (code / "inference.py").write_text("")
    (code / "requirements.txt").write_text("no-such-package-anywhere==9.9\n")
    # pip waits on an index that never answers, so the install takes the timeout (then fails: serve exits).
    with SocketThatNeverAnswers() as port:
        server = Server(
            root,
            tmp_path / "serve.log",
            PIP_INDEX_URL=f"http://127.0.0.1:{port}/simple",
            PIP_RETRIES="0",
            PIP_TIMEOUT="4",
        )
        try:
            deadline, body = time.monotonic() + 20, None
            while time.monotonic() < deadline and server.process.poll() is None:
                try:
                    response, seconds = _timed_ping(server.url)
                except requests.ConnectionError:
                    time.sleep(0.05)
                    continue
                assert response.status_code == 503 and seconds < PING_BOUND_SECONDS, (response.content, seconds)
                body = json_error(response, 503, "model_unavailable")["message"]
                if "installing" in body:
                    break
                time.sleep(0.05)
            assert body is not None and "installing" in body and "requirements.txt" in body, body
        finally:
            assert server.stop() in (0, 1)


class SocketThatNeverAnswers:
    """A listening socket that accepts nothing (its backlog fills; connections hang): yields its port."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.parametrize("mode", ["plain", "json"])
def test_every_access_line_survives_a_plain_redirect_to_a_file(tmp_path, trained_root, mode):
    """``serve > file 2>&1``: the shell opens the file without O_APPEND; nginx used to open
    /dev/stdout anew (its own offset), so the workers' lines overwrote its access lines."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = program_env(
        trained_root,
        SAGEMAKER_BIND_TO_PORT=str(port),
        SERVE_LISTEN_ADDRESS="127.0.0.1",
        SAGEMAKER_MODEL_SERVER_WORKERS="2",
        LIGHTGBM_PREDICTOR="lightgbm",
        LOG_FORMAT=mode,
    )
    with log_path.open("wb") as out:  # what `> file` does: O_WRONLY|O_CREAT|O_TRUNC, no O_APPEND
        process = subprocess.Popen([str(PROGRAM / "serve")], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        ids = [f"redirect-{mode}-{n}" for n in range(30)]
        for n, request_id in enumerate(ids):  # the bad ones make the workers log a line each
            body = "59,2,32.1,101,157,93.2,38,4,4.8598,87" if n % 2 else "not,a,number"
            requests.post(
                url + "/invocations",
                data=body,
                timeout=10,
                headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": request_id},
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(_access_lines(log_path.read_text(errors="replace"), mode)) < len(ids):
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=40)
    text = log_path.read_text(errors="replace")
    access = _access_lines(text, mode)
    for request_id in ids:
        quoted = f'"request_id":"{request_id}"' if mode == "json" else f" request_id={request_id}"
        assert sum(line.endswith(quoted) or f"{quoted}," in line for line in access) == 1, (request_id, text[-3000:])
    if mode == "json":
        for line in text.splitlines():
            json.loads(line)  # every line whole: none cut into by another


def _access_lines(text: str, mode: str) -> list[str]:
    """nginx's access lines for /invocations, in either format."""
    marker = '"logger":"nginx.access"' if mode == "json" else '"POST /invocations HTTP/1.1" status='
    return [line for line in text.splitlines() if marker in line and "/invocations" in line]
