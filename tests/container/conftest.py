"""Container tier: build the real image once per session and run it with Docker or Podman.

The engine comes from local_test/container_engine.sh (Docker when `docker info` works,
otherwise Podman, which that script installs and configures). Without a working engine the
tests are skipped, except in CI (env CI set), where that is a failure.

Environment:
  LIGHTGBM_TEST_IMAGE   use this already-built image instead of building one
  CONTAINER_ENGINE      force docker or podman
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from support import TIMINGS

REPO = Path(__file__).resolve().parents[2]
ENGINE_SCRIPT = REPO / "local_test" / "container_engine.sh"
DEFAULT_TAG = "lightgbm-sagemaker:test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: builds and runs the real image with Docker or Podman")


@pytest.fixture(scope="session")
def image(engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tag of the image under test, built once per session from container/."""
    prebuilt = os.environ.get("LIGHTGBM_TEST_IMAGE")
    if prebuilt:
        return prebuilt
    log = tmp_path_factory.mktemp("build") / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            ["bash", "-c", 'source "$0" && engine_build "$1"', str(ENGINE_SCRIPT), DEFAULT_TAG],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
            check=False,
            env={**os.environ, "CONTAINER_ENGINE": engine},  # already set up: skip detection
        )
    TIMINGS["image build"] = time.monotonic() - started
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"{engine} build failed (exit {result.returncode}); last lines:\n{tail}", pytrace=False)
    return DEFAULT_TAG
