"""local_test/sagemaker_local's `docker` and `docker compose` shims, against fake podman and podman-compose.

Fast (no engine, no image): they pin down exactly what the SDK's local mode relies on, with
the SDK's own helpers where it has them (get_docker_host, the compose detection,
kill_child_processes as delete_endpoint uses it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from client_helpers import REPO

pytestmark = pytest.mark.client

SHIM = REPO / "local_test" / "sagemaker_local"
BIN = SHIM / "bin"

FAKE_PODMAN = """#!/usr/bin/env bash
echo "podman $*" >>"$FAKE_LOG"
case "$1" in
    info) echo "host:"; echo "  cgroupManager: systemd" ;;
    context) echo "[]" ;;
esac
exit 0
"""

FAKE_COMPOSE = """#!/usr/bin/env bash
echo "compose $*" >>"$FAKE_LOG"
for arg in "$@"; do
    case "$arg" in
        version) echo "podman-compose version 1.6.0"; exit 0 ;;
        down) exit 0 ;;
        up)
            mode="${FAKE_UP:-exit:0}"
            case "$mode" in
                exit:*) echo "train output"; exit "${mode#exit:}" ;;
                sleep) echo "serving"; exec sleep 60 ;;
            esac ;;
    esac
done
exit 0
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """PATH with the shim first and a fake podman; PODMAN_COMPOSE pointing at a fake podman-compose."""
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name, text in (("podman", FAKE_PODMAN), ("podman-compose", FAKE_COMPOSE)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    monkeypatch.setenv("PATH", os.pathsep.join([str(BIN), str(fakes), "/usr/bin", "/bin"]))
    monkeypatch.setenv("PODMAN_COMPOSE", str(fakes / "podman-compose"))
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    return lambda: log.read_text().splitlines()


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, **kwargs)


def test_docker_runs_podman(fake):
    assert docker("ps", "-a", "--format", "{{.Names}}").returncode == 0
    assert fake() == ["podman ps -a --format {{.Names}}"]


def test_context_inspect_answers_like_docker(fake, monkeypatch):
    from sagemaker.local.utils import get_docker_host

    result = docker("context", "inspect")
    assert result.returncode == 0
    context = json.loads(result.stdout)
    assert context[0]["Name"] == "default"
    assert context[0]["Endpoints"]["docker"]["Host"].startswith("unix://")
    assert get_docker_host() == "localhost"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3:2375")  # a remote engine's host is reported
    assert get_docker_host() == "10.1.2.3"


def test_sdk_finds_the_compose_shim(fake):
    import shutil

    from sagemaker.local.image import _SageMakerContainer

    # The SDK tries `docker compose version` first but wants "v2" in its answer, which
    # podman-compose's does not have; it then takes `docker-compose` from PATH: the shim too.
    assert _SageMakerContainer._get_compose_cmd_prefix() == ["docker-compose"]
    assert shutil.which("docker-compose") == str(BIN / "docker-compose")
    assert fake() == ["compose version"]


def test_up_adds_abort_on_failure_and_runs_down(fake):
    result = docker("compose", "-f", "/x/docker-compose.yaml", "up", "--build", "--abort-on-container-exit")
    assert result.returncode == 0, result.stderr
    assert "train output" in result.stdout
    assert fake() == [
        "compose -f /x/docker-compose.yaml up --build --abort-on-container-exit --abort-on-container-failure",
        "compose -f /x/docker-compose.yaml down -t 30",
    ]


def test_failing_container_fails_up(fake, monkeypatch):
    monkeypatch.setenv("FAKE_UP", "exit:1")
    result = subprocess.run(
        ["docker-compose", "-f", "/x/c.yaml", "up", "--abort-on-container-exit"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert fake()[-1] == "compose -f /x/c.yaml down -t 30"


def test_other_commands_and_detached_up_pass_through(fake):
    assert docker("compose", "-f", "/x/c.yaml", "ps").returncode == 0
    assert docker("compose", "-f", "/x/c.yaml", "up", "-d").returncode == 0
    assert fake() == ["compose -f /x/c.yaml ps", "compose -f /x/c.yaml up -d"]


@pytest.mark.parametrize("sdk_order", [True, False], ids=["children-first-like-the-sdk", "wrapper-only"])
def test_sigterm_stops_the_stack_and_exits_130(fake, monkeypatch, sdk_order):
    """delete_endpoint(): SIGTERM to the compose process's children, then to it; it must exit 130."""
    from sagemaker.local.utils import kill_child_processes

    monkeypatch.setenv("FAKE_UP", "sleep")
    process = subprocess.Popen(
        ["docker", "compose", "-f", "/x/c.yaml", "up", "--build", "--abort-on-container-exit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline() == b"serving\n"
    started = time.monotonic()
    if sdk_order:
        kill_child_processes(process.pid)
    process.terminate()
    process.stdout.read()  # the SDK reads until EOF: nothing may keep the pipe open
    assert process.wait(timeout=20) == 130
    assert time.monotonic() - started < 10
    assert fake()[-1] == "compose -f /x/c.yaml down -t 30"


def test_env_sh_uses_the_shim_only_without_docker(tmp_path):
    script = 'source "$0" >/dev/null 2>&1; echo "$PATH"'
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    env["PATH"] = "/usr/bin:/bin"
    with_shim = (
        subprocess.run(
            ["bash", "-c", script, str(SHIM / "env.sh")],
            env={**env, "SAGEMAKER_LOCAL_SHIM": "1"},
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split(":")
    )
    assert with_shim[0] == str(BIN)
    assert "/usr/sbin" in with_shim
    docker_path = (
        subprocess.run(
            ["bash", "-c", script, str(SHIM / "env.sh")],
            env={**env, "SAGEMAKER_LOCAL_SHIM": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split(":")
    )
    assert str(BIN) not in docker_path


def test_activate_leaves_a_docker_host_alone():
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[1]); import sagemaker_local as s; "
        "print(s.activate()); print(os.environ['PATH'])"
    )
    env = {**os.environ, "SAGEMAKER_LOCAL_SHIM": "0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "local_test")], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "docker"
    assert str(BIN) not in out[1].split(":")


def test_local_session_needs_no_aws(monkeypatch):
    """No credentials, no region configured: a LocalSession anyway, with telemetry off."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("SAGEMAKER_LOCAL_SHIM", "1")  # no engine needed to build the session
    monkeypatch.setenv("PATH", os.environ["PATH"])  # restored afterwards (activate() changes it)
    monkeypatch.delenv("PODMAN_COMPOSE", raising=False)
    import sagemaker_local.session as helper

    monkeypatch.setattr(helper, "_engine", None)
    session = helper.local_session(serving_port=18080)
    assert session.local_mode
    assert session.boto_region_name == "us-east-1"
    assert session.config["local"]["serving_port"] == 18080
    assert session.sagemaker_runtime_client.serving_port == 18080
    assert session.sagemaker_config["SageMaker"]["PythonSDK"]["Modules"]["TelemetryOptOut"] is True
    assert session.boto_session.get_credentials().access_key == "local-mode"
