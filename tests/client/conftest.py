"""Client tier: the SageMaker Python SDK's local mode (v2) against the real image, and the notebook.

The image is built once per session with local_test/container_engine.sh (Docker when `docker
info` works, otherwise Podman, set up by that script); local_test/sagemaker_local makes the SDK
work with Podman. Without a working engine the tests are skipped, except in CI (env CI set),
where that is a failure.

Environment:
  LIGHTGBM_TEST_IMAGE   use this already-built image instead of building one
  CONTAINER_ENGINE      force docker or podman
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import TIMINGS

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "local_test"))  # the sagemaker_local helper, as users import it
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import sagemaker_local  # noqa: E402

TAG = "lightgbm-sagemaker:client-test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "client: SageMaker Python SDK local mode against the real image")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"client tier cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def client_engine() -> str:
    """docker or podman, with `docker`/`docker compose` made to work for local mode."""
    try:
        return sagemaker_local.activate()
    except sagemaker_local.EngineUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def client_image(client_engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Tag of the image under test, built once per session from container/."""
    prebuilt = os.environ.get("LIGHTGBM_TEST_IMAGE")
    if prebuilt:
        return prebuilt
    log = tmp_path_factory.mktemp("client-build") / "build.log"
    started = time.monotonic()
    try:
        sagemaker_local.build_image(TAG, log=log)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    TIMINGS["image build"] = time.monotonic() - started
    return TAG


@pytest.fixture(scope="session")
def leftover_guard(client_engine: str):
    """The local-mode containers that existed before; at the end, removes and reports any new one."""
    before = set(sagemaker_local.sagemaker_containers())
    networks_before = _networks(client_engine)
    yield before
    left = set(sagemaker_local.sagemaker_containers()) - before
    if left:  # clean up what we started, by name, then report it
        subprocess.run([client_engine, "rm", "-f", *sorted(left)], capture_output=True, check=False)
    if "sagemaker-local" in _networks(client_engine) - networks_before:
        subprocess.run([client_engine, "network", "rm", "sagemaker-local"], capture_output=True, check=False)
    assert not left, f"local mode left containers behind: {sorted(left)}"


def _networks(engine: str) -> set[str]:
    result = subprocess.run(
        [engine, "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True, check=False
    )
    return set(result.stdout.split())
