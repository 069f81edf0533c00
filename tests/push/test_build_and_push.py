"""build_and_push.sh: a real build and push to a local registry, and the ECR path's AWS
calls against moto, an AWS API emulator (no AWS account or network is involved)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from push_helpers import IMAGE_NAME, SCRIPT, TAG, Pushed, Registry, run_script

from support import base_env, http_get

pytestmark = pytest.mark.push

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"  # moto's account, region us-east-1


def test_help_and_bad_arguments() -> None:
    shown = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert shown.returncode == 0
    for option in ("--image-name", "--tag", "--region", "--platform", "--registry", "--no-build"):
        assert option in shown.stdout
    for bad in (["--bogus"], ["--tag"], ["--image-name", "Upper"], ["--platform", "amd64"]):
        result = subprocess.run(["bash", str(SCRIPT), *bad], capture_output=True, text=True, check=False)
        assert result.returncode != 0, bad
        assert "build_and_push:" in result.stderr, bad


def test_no_build_needs_the_local_image(engine: str) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--no-build", "--image-name", "no-such-image-push-test", "--registry", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        env=base_env(CONTAINER_ENGINE=engine),
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "no local image no-such-image-push-test:latest" in result.stderr


def test_shellcheck_clean() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(
        ["shellcheck", "-x", SCRIPT.name], cwd=SCRIPT.parent, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_push_to_local_registry_then_pull_by_digest(
    engine: str, tls_off: list[str], registry: Registry, pushed: Pushed
) -> None:
    assert pushed.result.returncode == 0, pushed.explain()
    assert pushed.aws_calls is not None and not pushed.aws_calls.exists(), "--registry must not call aws"
    assert pushed.image == f"{registry.host}/{IMAGE_NAME}:{TAG}", pushed.explain()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pushed.digest), pushed.explain()
    assert pushed.pinned == f"{registry.host}/{IMAGE_NAME}@{pushed.digest}"

    # What the registry holds, over its HTTP API: the tag points at the printed digest,
    # the manifest is Docker v2 schema 2 (SageMaker rejects OCI manifests) and hashes to
    # that digest, and its config carries the SageMaker labels.
    accept = {"Accept": f"{DOCKER_V2}, {OCI_MANIFEST}"}
    api = f"{registry.url}/v2/{IMAGE_NAME}"
    status, headers, _ = http_get(f"{api}/manifests/{TAG}", accept, method="HEAD")
    assert status == 200 and headers["Docker-Content-Digest"] == pushed.digest
    status, headers, body = http_get(f"{api}/manifests/{pushed.digest}", accept)
    assert status == 200
    assert headers["Content-Type"] == DOCKER_V2
    assert "sha256:" + hashlib.sha256(body).hexdigest() == pushed.digest
    manifest = json.loads(body)
    status, _, config = http_get(f"{api}/blobs/{manifest['config']['digest']}")
    assert status == 200
    assert json.loads(config)["config"]["Labels"]["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"

    # And the engine pulls it back by digest.
    pulled = subprocess.run(
        [engine, "pull", *tls_off, pushed.pinned], capture_output=True, text=True, timeout=600, check=False
    )
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    labels = subprocess.run(
        [engine, "image", "inspect", "--format", "{{json .Config.Labels}}", pushed.pinned],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert json.loads(labels)["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"


def test_ecr_path_against_aws_api_emulator(
    engine: str, registry: Registry, pushed: Pushed, aws_tools: Path, aws_emulator: str, tmp_path: Path
) -> None:
    """The default (ECR) path with every AWS call answered by moto, an AWS API EMULATOR
    (account 123456789012), through AWS_ENDPOINT_URL and dummy credentials.

    moto has no registry behind the ECR host it reports, so ECR_REGISTRY_OVERRIDE (test-only)
    sends the real `aws ecr get-login-password | <engine> login` and the real push to the
    local registry instead; the repository still has to be found or created in the emulator.
    """
    assert pushed.result.returncode == 0, "needs the image built by the --registry test: " + pushed.explain()
    no_file = str(tmp_path / "absent")
    env = base_env(
        CONTAINER_ENGINE=engine,
        PATH=f"{aws_tools}:{base_env()['PATH']}",
        AWS_ENDPOINT_URL=aws_emulator,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=no_file,
        AWS_SHARED_CREDENTIALS_FILE=no_file,
        ECR_REGISTRY_OVERRIDE=registry.host,
        REGISTRY_AUTH_FILE=str(tmp_path / "auth.json"),  # podman login writes here...
        DOCKER_CONFIG=str(tmp_path / "docker"),  # ...docker login here: never the user's files
    )

    def aws(*args: str) -> dict:
        result = subprocess.run(
            [str(aws_tools / "aws"), *args, "--region", "us-east-1", "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"aws {' '.join(args)} against the emulator: {result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else {}

    assert aws("ecr", "describe-repositories")["repositories"] == []

    first = run_script(
        ["--no-build", "--image-name", IMAGE_NAME, "--tag", TAG, "--region", "us-east-1"],
        env,
        "ECR path, repository created (push only)",
    )
    assert first.result.returncode == 0, first.explain()
    assert f"creating ECR repository {IMAGE_NAME} in 123456789012/us-east-1" in first.result.stderr
    assert f"pushing to {registry.host} instead of {ECR_HOST}" in first.result.stderr
    repositories = aws("ecr", "describe-repositories")["repositories"]
    assert [r["repositoryName"] for r in repositories] == [IMAGE_NAME]
    assert repositories[0]["repositoryUri"] == f"{ECR_HOST}/{IMAGE_NAME}"

    # The login used the emulator's token: user AWS, password from get-login-password.
    auth_file = Path(env["REGISTRY_AUTH_FILE"]) if engine == "podman" else Path(env["DOCKER_CONFIG"]) / "config.json"
    auth = json.loads(auth_file.read_text())["auths"][registry.host]["auth"]
    token = subprocess.run(
        [str(aws_tools / "aws"), "ecr", "get-login-password", "--region", "us-east-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert base64.b64decode(auth).decode() == f"AWS:{token}"
    assert first.image == f"{registry.host}/{IMAGE_NAME}:{TAG}"
    assert first.digest == pushed.digest  # the same image, pushed again

    # Again, the repository now exists; the region comes from the environment this time.
    second = run_script(
        ["--no-build", "--image-name", IMAGE_NAME, "--tag", TAG],
        {**env, "AWS_DEFAULT_REGION": "us-east-1"},
        "ECR path, repository exists (push only)",
    )
    assert second.result.returncode == 0, second.explain()
    assert "creating ECR repository" not in second.result.stderr
    assert f"instead of {ECR_HOST}" in second.result.stderr
    assert [r["repositoryName"] for r in aws("ecr", "describe-repositories")["repositories"]] == [IMAGE_NAME]
    assert second.digest == pushed.digest
