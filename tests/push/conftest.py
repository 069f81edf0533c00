"""Push tier: build_and_push.sh for real, against a local registry and an AWS API emulator.

Nothing here talks to AWS or to a public registry:
  - the registry is Debian's `docker-registry` (CNCF distribution 2.8), started by these
    fixtures on 127.0.0.1:<free port> with its storage in a temp dir (apt-get installed
    when missing; the systemd service is never used);
  - the AWS side is moto's server mode (`moto_server`), an emulator of the AWS APIs, on
    127.0.0.1:<free port>, reached by the AWS CLI v1 through AWS_ENDPOINT_URL with dummy
    credentials. Both come from tests/push/requirements.txt, installed on first use into
    the venv build/push-tools (not .venv: botocore needs python-dateutil<3).
The image is built once per session by build_and_push.sh itself (tag lightgbm-sagemaker:push-test;
the engine's layer cache makes a rebuild cheap). A tool that cannot be installed skips the
tests, except in CI (env CI set), where that is a failure.

Environment:
  LIGHTGBM_TEST_IMAGE   push this already-built image (tagged lightgbm-sagemaker:push-test,
                        then pushed with --no-build) instead of building
  CONTAINER_ENGINE      force docker or podman
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from push_helpers import IMAGE_NAME, TAG, Registry, apt_tool, run_script

from support import Background, base_env, free_port


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "push: build_and_push.sh against a local registry and an AWS API emulator (moto)"
    )


@pytest.fixture(scope="session")
def tls_off(engine: str) -> list[str]:
    """The flag podman needs to talk to a plain-HTTP registry (docker allows loopback anyway)."""
    return ["--tls-verify=false"] if engine == "podman" else []


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A real registry (Debian's docker-registry) on 127.0.0.1:<free port>, storage in a temp dir."""
    binary = apt_tool("docker-registry", "docker-registry")
    workdir = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: push-tests-only\n"
    )
    server = Background([binary, "serve", str(config)], workdir / "registry.log")
    server.wait_http(f"http://127.0.0.1:{port}/v2/")
    try:
        yield Registry(f"127.0.0.1:{port}")
    finally:
        server.stop()
        shutil.rmtree(workdir / "data", ignore_errors=True)  # a pushed image is ~200 MB


@pytest.fixture(scope="session")
def pushed(engine: str, registry: Registry, tmp_path_factory: pytest.TempPathFactory):
    """build_and_push.sh --registry: builds lightgbm-sagemaker:push-test and pushes it to the
    local registry, with an `aws` first on PATH that records any call (there must be none)."""
    tmp = tmp_path_factory.mktemp("push")
    fake_bin = tmp / "bin"
    fake_bin.mkdir()
    aws_calls = tmp / "aws-calls"
    fake_aws = fake_bin / "aws"
    fake_aws.write_text(f'#!/bin/sh\necho "$*" >>"{aws_calls}"\nexit 1\n')
    fake_aws.chmod(0o755)

    args = ["--registry", registry.host, "--image-name", IMAGE_NAME, "--tag", TAG]
    prebuilt = os.environ.get("LIGHTGBM_TEST_IMAGE")
    if prebuilt:
        subprocess.run([engine, "tag", prebuilt, f"{IMAGE_NAME}:{TAG}"], check=True, timeout=60)
        args.append("--no-build")
    env = base_env(CONTAINER_ENGINE=engine, PATH=f"{fake_bin}:{os.environ.get('PATH', '')}")
    what = "push of LIGHTGBM_TEST_IMAGE" if prebuilt else "build + push"
    run = run_script(args, env, f"build_and_push.sh --registry ({what})")
    run.aws_calls = aws_calls
    try:
        yield run
    finally:
        # Drop the names the push and the pull by digest gave the image; the image itself
        # stays as lightgbm-sagemaker:push-test (the next build reuses its layers).
        names = [f"{registry.host}/{IMAGE_NAME}:{TAG}"] + ([run.pinned] if run.pinned else [])
        drop = ["untag", f"{IMAGE_NAME}:{TAG}", *names] if engine == "podman" else ["rmi", *names]
        subprocess.run([engine, *drop], capture_output=True, timeout=60, check=False)
