"""Helpers for the push tier (tests/push): paths, servers in the background, runs of
build_and_push.sh. (Not named conftest or support: other tiers own those module names.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from support import TIMINGS, tail, unavailable

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "build_and_push.sh"
IMAGE_NAME = "lightgbm-sagemaker"
TAG = "push-test"


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
