"""SageMaker Python SDK local mode for this image, with Docker or with Podman only, and without AWS.

    import sys; sys.path.insert(0, "local_test")           # from the repository's root
    from sagemaker_local import local_session, image_uri

    session = local_session()                               # a sagemaker.local.LocalSession
    estimator = Estimator(image_uri(), role="arn:aws:iam::111111111111:role/local",
                          instance_type="local", sagemaker_session=session,
                          output_path="file:///tmp/models", hyperparameters={...})

What it does, and nothing more (the SDK itself is used as released, sagemaker==2.257.7):

* activate(): finds the container engine like local_test/container_engine.sh does (Docker
  when `docker info` works, else Podman, set up on first use). With Docker nothing changes.
  With Podman, local_test/sagemaker_local/bin goes first on PATH: its `docker` runs podman
  but answers `docker context inspect` like Docker, and its `docker compose` /
  `docker-compose` runs podman-compose so that a failing `train` fails fit(), SIGTERM from
  delete_endpoint() exits 130, and the containers are removed afterwards. /usr/sbin is
  added to PATH (netavark calls iptables). Only this process's environment changes.
* local_session(): a LocalSession that never calls AWS: an explicit region, dummy static
  credentials when no real ones are configured (the EC2 metadata service is not asked),
  and a sagemaker_config that opts out of telemetry (otherwise the SDK calls STS and S3 on
  every step). `serving_port` and `container_root` go to the session's local-mode config.
* image_uri(): $LIGHTGBM_IMAGE_URI when set, else builds container/ with the engine
  (local_test/container_engine.sh's engine_build; a warm layer cache takes seconds).

Environment: SAGEMAKER_LOCAL_SHIM=1 forces the Podman shim, =0 never uses it;
CONTAINER_ENGINE=docker|podman skips the engine detection; LIGHTGBM_IMAGE_URI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = HERE / "bin"
REPO = HERE.parent.parent
ENGINE_SCRIPT = REPO / "local_test" / "container_engine.sh"
DEFAULT_TAG = "lightgbm-sagemaker:local"
DEFAULT_REGION = "us-east-1"
DUMMY_ROLE = "arn:aws:iam::111111111111:role/SageMakerLocalMode"  # local mode never assumes it

#: The SDK's own configuration: no telemetry (it would call STS and S3 on every step).
SAGEMAKER_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}

_engine: str | None = None


class EngineUnavailable(RuntimeError):
    """Neither Docker nor Podman works on this machine."""


def _prepend_path(directory: str) -> None:
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if directory not in parts:
        os.environ["PATH"] = os.pathsep.join([directory, *parts])


def _append_path(directory: str) -> None:
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    if directory not in parts:
        os.environ["PATH"] = os.pathsep.join([*parts, directory])


def detect_engine() -> str:
    """'docker' or 'podman', as local_test/container_engine.sh decides (and sets Podman up)."""
    global _engine
    if _engine is not None:
        return _engine
    forced = os.environ.get("SAGEMAKER_LOCAL_SHIM", "")
    if forced == "1":
        _engine = "podman"
        return _engine
    if forced == "0":
        _engine = "docker"
        return _engine
    try:
        result = subprocess.run(["bash", str(ENGINE_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineUnavailable(f"container engine setup failed: {exc}") from exc
    lines = result.stdout.strip().splitlines()
    name = lines[-1] if lines else ""
    if result.returncode != 0 or name not in ("docker", "podman"):
        raise EngineUnavailable(
            f"neither docker nor podman works (container_engine.sh exit {result.returncode}): "
            f"{result.stderr.strip()[-2000:]}"
        )
    _engine = name
    return _engine


def activate() -> str:
    """Make `docker` and `docker compose` work for local mode in this process; returns the engine."""
    _append_path("/usr/sbin")
    _append_path("/sbin")
    engine = detect_engine()
    if engine == "podman":
        _prepend_path(str(BIN))
        # podman-compose may be installed next to this interpreter without being on PATH
        # (e.g. `.venv/bin/python -m pytest` without activating the venv).
        if not os.environ.get("PODMAN_COMPOSE") and shutil.which("podman-compose") is None:
            beside = Path(sys.executable).parent / "podman-compose"
            if beside.exists():
                os.environ["PODMAN_COMPOSE"] = str(beside)
            else:
                os.environ["PODMAN_COMPOSE"] = f"{sys.executable} -m podman_compose"
    return engine


def _boto_session(region: str):
    """A boto3 session for `region`; dummy static keys when no real credentials are configured."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    # Look for credentials without asking the EC2 metadata service (a 1-2 s timeout off EC2).
    resolver = core.get_component("credential_provider")
    for provider in ("iam-role", "container-role"):
        try:
            resolver.remove(provider)
        except Exception:
            pass
    if core.get_credentials() is not None:
        return boto3.Session(botocore_session=core, region_name=region)
    return boto3.Session(region_name=region, aws_access_key_id="local-mode", aws_secret_access_key="local-mode")


#: The session's default bucket: never written to in local mode with local code.
LOCAL_BUCKET = "sagemaker-local-mode"


def local_session(
    serving_port: int | None = None,
    container_root: str | os.PathLike | None = None,
    region: str | None = None,
    boto_session=None,
):
    """A sagemaker.local.LocalSession for this machine's engine that never calls AWS."""
    activate()
    from sagemaker.local import LocalSession

    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
    session = LocalSession(boto_session=boto_session or _boto_session(region), sagemaker_config=SAGEMAKER_CONFIG)
    # Model(entry_point=...) asks for the default bucket even with local code, which uploads
    # nothing: resolving it costs an STS call (the account id) and an S3 one (create if
    # missing); even LocalSession(default_bucket=...) checks that the bucket exists. The SDK
    # skips both once the name is resolved, which is what this (private) attribute holds.
    session._default_bucket = LOCAL_BUCKET
    config = dict(session.config or {})
    local = dict(config.get("local") or {})
    local["local_code"] = True
    if serving_port is not None:
        local["serving_port"] = int(serving_port)
    if container_root is not None:
        Path(container_root).mkdir(parents=True, exist_ok=True)
        local["container_root"] = str(Path(container_root).resolve())
    config["local"] = local
    session.config = config  # validated by the SDK; also updates its runtime client's port
    return session


def build_image(tag: str = DEFAULT_TAG, log: str | os.PathLike | None = None) -> str:
    """Build container/ into `tag` with the engine (container_engine.sh's engine_build)."""
    engine = detect_engine()
    env = {**os.environ, "CONTAINER_ENGINE": engine}
    command = ["bash", "-c", 'source "$0" && engine_build "$1"', str(ENGINE_SCRIPT), tag]
    if log is None:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        output = result.stdout + result.stderr
    else:
        with open(log, "w") as out:
            result = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
        output = Path(log).read_text(errors="replace")
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise RuntimeError(f"{engine} build of {tag} failed (exit {result.returncode}):\n{tail}")
    return tag


def image_uri(tag: str = DEFAULT_TAG) -> str:
    """$LIGHTGBM_IMAGE_URI when set, else `tag` built from container/."""
    return os.environ.get("LIGHTGBM_IMAGE_URI") or build_image(tag)


def sagemaker_containers() -> list[str]:
    """Names of the containers local mode started that still exist (running or not)."""
    engine = detect_engine()
    result = subprocess.run([engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=False)
    return [name for name in result.stdout.split() if "-algo-" in name]
