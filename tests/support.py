"""Test helpers shared by the tiers: paths, free ports, and the real `train` / `serve` as processes.

(Not named conftest: tests/container has its own conftest module.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / "container" / "program"
TEST_DIR = REPO / "local_test" / "test_dir"
DATA = REPO / "data"
VENV_BIN = Path(sys.executable).parent

sys.path.insert(0, str(PROGRAM))  # unit tests import the package exactly as the image does


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raw_http(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library tidies them up); (status, headers, body) back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    while answer.startswith(b"HTTP/1.1 100 "):  # Expect: 100-continue
        answer = answer.split(b"\r\n\r\n", 1)[1]
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def in_process_app(root: Path, **extra: str):
    """The Flask app ``serve``'s workers run, in this process (Flask's test client drives it).

    Settings come from the same environment variables as for ``serve`` (``extra``), on top of
    a clean environment; multi-model mode gets a private state directory under ``root``.
    """
    from lightgbm_container.serving.app import create_app
    from lightgbm_container.serving.store import create_store
    from lightgbm_container.settings import serving_settings

    env = {"SAGEMAKER_BASE_DIR": str(root), "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "LIGHTGBM_PREDICTOR": "lightgbm", **extra}
    if env.get("SAGEMAKER_MULTI_MODEL") == "true":
        env.setdefault("LIGHTGBM_STATE_DIR", str(root / ".state"))
    settings = serving_settings(env)
    return create_app(settings, create_store(settings))


def program_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MODEL_SERVER_", "LIGHTGBM_"))}
    env["PATH"] = f"{VENV_BIN}:/usr/sbin:{env.get('PATH', '')}"
    env["SAGEMAKER_BASE_DIR"] = str(root)
    env.update(extra)
    return env


def run_train(root: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROGRAM / "train")], env=program_env(root, **extra), capture_output=True, text=True, timeout=300
    )


def make_root(tmp: Path, hyperparameters: dict | None = None, source: Path = TEST_DIR) -> Path:
    """A SageMaker-layout ML root: a copy of ``source`` with the given hyperparameters."""
    import json

    root = tmp / "ml"
    shutil.copytree(source, root)
    if hyperparameters is not None:
        (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    return root


class Server:
    """The real `serve` (nginx + gunicorn) on a free loopback port; stopped by whoever started it."""

    def __init__(self, root: Path, log_path: Path, **extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        settings = {
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SERVE_LISTEN_ADDRESS": "127.0.0.1",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "LIGHTGBM_COMPILE_CACHE": str(REPO / "build" / "compile-cache"),
        }
        env = program_env(root, **{**settings, **extra})
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen([str(PROGRAM / "serve")], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.logs()[-20000:]}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or workers still booting
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve never became healthy:\n{self.logs()[-20000:]}")

    def logs(self) -> str:
        """Everything serve has logged so far."""
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def post(self, body: bytes | str, content_type: str = "text/csv", accept: str | None = None, path: str = "/invocations", **headers: str):
        headers = {"Content-Type": content_type, **headers}
        if accept is not None:
            headers["Accept"] = accept
        return requests.post(self.url + path, data=body, headers=headers, timeout=60)
