"""Helpers for the push tier (tests/push): paths, servers in the background, runs of
build_and_push.sh. (Not named conftest or support: other tiers own those module names.)"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "build_and_push.sh"
TOOLS_REQUIREMENTS = Path(__file__).with_name("requirements.txt")
TOOLS_VENV = REPO / "build" / "push-tools"
IMAGE_NAME = "lightgbm-sagemaker"
TAG = "push-test"

#: name -> seconds, printed at the end of the run.
TIMINGS: dict[str, float] = {}

# Loopback servers must never be reached through a proxy (neither by urllib here, nor by
# the AWS CLI or the engine in the script).
_NO_PROXY = "127.0.0.1,localhost"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"push tier cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any AWS settings, loopback never proxied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "ECR_REGISTRY_OVERRIDE"}
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{_NO_PROXY}" if env.get(key) else _NO_PROXY
    env.update(extra)
    return env


def http_get(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) of a loopback URL, without proxies."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _LOCAL.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def apt_tool(binary: str, package: str) -> str:
    """Path of `binary`, installing Debian's `package` when it is missing (needs root)."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found:
        return found
    if os.geteuid() != 0:
        unavailable(f"{binary} is missing and installing {package} with apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900, check=False)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=900, check=False)
        result = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900, check=False)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        unavailable(f"could not install {package}: {tail(result.stdout + result.stderr, 10)}")
    return found


class Background:
    """A server started by a fixture, its output in a log file; stop() ends it."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_http(self, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if http_get(url)[0] < 500:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{self.proc.args[0]} did not answer {url}; log:\n{tail(self.log.read_text(errors='replace'))}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@dataclass
class Pushed:
    """One run of build_and_push.sh and the image:/digest:/pinned: lines it printed."""

    result: subprocess.CompletedProcess
    image: str = ""
    digest: str = ""
    pinned: str = ""
    aws_calls: Path | None = None  # where a fake `aws` recorded its calls, if one was on PATH

    def __post_init__(self) -> None:
        for line in self.result.stdout.splitlines():
            key, _, value = line.partition(": ")
            if key in ("image", "digest", "pinned"):
                setattr(self, key, value.strip())

    def explain(self) -> str:
        return f"exit {self.result.returncode}\nstdout:\n{self.result.stdout}\nstderr:\n{tail(self.result.stderr)}"


def run_script(args: list[str], env: dict[str, str], timing: str) -> Pushed:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=3600, check=False
    )
    TIMINGS[timing] = time.monotonic() - started
    return Pushed(result)
