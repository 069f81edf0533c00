"""Client tier for the SageMaker Python SDK v3 (sagemaker 3.x), run in a venv of its own.

v3 cannot share a venv with the v2 tier (sagemaker==2.257.7 needs sagemaker-core<2,
sagemaker-train needs sagemaker-core>=2.27; both own the `sagemaker` package), so
tests/client/test_sdk_v3.py installs tests/client/sdk_v3/requirements.txt into build/sdk-v3
and runs this file there (not collected by the main run: its name does not start with test_).
By hand:

    build/sdk-v3/bin/python -m pytest --noconftest -p no:cacheprovider tests/client/sdk_v3/checks_v3.py

What it covers, through public v3 API only (plus two private attributes, marked):
  * ModelTrainer(training_mode=Mode.LOCAL_CONTAINER) with the image as is: v3 writes a compose
    service with NO command, so the image itself must start `train` (its CMD, train-or-serve,
    does when TRAINING_JOB_NAME is set);
  * ModelTrainer with SourceCode(command="train"): works even with an image whose CMD is serve;
  * a failing job raises;
  * serving through sagemaker.core.local.LocalSession (the v2 local-mode engine that v3 ships in
    sagemaker-core): create_model / create_endpoint_config / create_endpoint / invoke_endpoint;
  * ModelBuilder(mode=LOCAL_CONTAINER, image_uri=...) has no route for a bring-your-own image
    (a gap detector: it fails when v3 changes that).
No AWS call is allowed (botocore is refused), telemetry is opted out and checked, and no
local-mode container may be left behind.

Environment: LIGHTGBM_TEST_IMAGE (required; skipped without it, failed in CI).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
IMAGE = os.environ.get("LIGHTGBM_TEST_IMAGE", "")
DATA = REPO / "data" / "diabetes.csv"
HYPERPARAMETERS = {"num_boost_round": "20", "objective": "regression"}
DUMMY_ROLE = "arn:aws:iam::111111111111:role/SageMakerLocalMode"
NO_TELEMETRY = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
TIMINGS: dict[str, float] = {}
#: tarfile's extraction filter where this Python has it (Debian's 3.11.2, which CI uses, has none).
DATA_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}

# The SDK reads these when it first needs them: set before any sagemaker import (all are lazy).
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "local-mode"
_config_dir = tempfile.mkdtemp(prefix="sagemaker-v3-config-")
atexit.register(shutil.rmtree, _config_dir, True)
Path(_config_dir, "config.yaml").write_text(json.dumps(NO_TELEMETRY))  # JSON is YAML
os.environ["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(Path(_config_dir, "config.yaml"))  # ModelTrainer has no session
os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"  # ModelBuilder.build() would call iam:SimulatePrincipalPolicy


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"v3 client tier cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _containers(engine: str) -> set[str]:
    out = subprocess.run([engine, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=False)
    return {name for name in out.stdout.split() if "algo-" in name}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rows(n: int = 5) -> np.ndarray:
    return np.loadtxt(DATA, delimiter=",", skiprows=1, ndmin=2)[:n, :-1]


def _csv(rows: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)


@pytest.fixture(scope="session")
def engine() -> str:
    """`docker` / `docker compose` made to work (Podman shims from local_test/sagemaker_local)."""
    if not IMAGE:
        _unavailable("set LIGHTGBM_TEST_IMAGE to the image under test")
    if not DATA.exists():
        _unavailable(f"{DATA} not found")
    sys.path.insert(0, str(REPO / "local_test"))
    import sagemaker_local  # only activate(): it imports nothing from the v2 SDK

    try:
        return sagemaker_local.activate()
    except sagemaker_local.EngineUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session", autouse=True)
def no_aws_and_no_leftovers(request):
    """Refuse every AWS API call, record telemetry attempts, and fail on leftover containers."""
    if not IMAGE:
        yield
        return
    import botocore.client

    engine = request.getfixturevalue("engine")
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def refuse(self, operation_name, api_params):
        calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        raise AssertionError(f"local mode called AWS: {calls[-1]}")

    from sagemaker.core.telemetry import telemetry_logging

    telemetry: list[tuple] = []
    original_send = telemetry_logging._send_telemetry_request
    telemetry_logging._send_telemetry_request = lambda *args, **kwargs: telemetry.append(args)
    botocore.client.BaseClient._make_api_call = refuse
    before = _containers(engine)
    yield calls
    botocore.client.BaseClient._make_api_call = original
    telemetry_logging._send_telemetry_request = original_send
    left = _containers(engine) - before
    if left:
        subprocess.run([engine, "rm", "-f", *sorted(left)], capture_output=True, check=False)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print("\nv3 client timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))
    assert not calls, f"AWS calls: {calls}"
    assert not telemetry, f"telemetry was sent {len(telemetry)} times despite TelemetryOptOut"
    assert not left, f"containers left behind: {sorted(left)}"


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("train")
    shutil.copy(DATA, directory / DATA.name)
    return directory


def run_trainer(root: Path, train_dir: Path, hyperparameters: dict, **extra):
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train import ModelTrainer
    from sagemaker.train.model_trainer import Mode

    trainer = ModelTrainer(
        training_mode=Mode.LOCAL_CONTAINER,
        training_image=IMAGE,
        hyperparameters=hyperparameters,
        compute=Compute(instance_type="local", instance_count=1),
        local_container_root=str(root),  # the default is the cwd at import time
        base_job_name="lightgbm-v3",
        **extra,
    )
    trainer.train(input_data_config=[InputData(channel_name="train", data_source=str(train_dir))])
    return root / "compressed_artifacts" / "model.tar.gz"  # where local mode leaves it; train() returns None


def _service(root: Path) -> dict:
    import yaml

    services = yaml.safe_load((root / "docker-compose.yaml").read_text())["services"]
    assert list(services) == ["algo-1"]
    return services["algo-1"]


@pytest.fixture(scope="session")
def trained(engine, train_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("model-trainer")
    started = time.monotonic()
    model_tar = run_trainer(root, train_dir, HYPERPARAMETERS)
    TIMINGS["ModelTrainer.train"] = time.monotonic() - started
    return model_tar


@pytest.fixture(scope="session")
def model_tar(engine, train_dir, tmp_path_factory) -> Path:
    """A model trained with SourceCode(command="train"): needs no image change; the serving tests use it."""
    from sagemaker.core.training.configs import SourceCode

    root = tmp_path_factory.mktemp("model-trainer-source-code")
    started = time.monotonic()
    path = run_trainer(root, train_dir, HYPERPARAMETERS, source_code=SourceCode(command="train"))
    TIMINGS["ModelTrainer.train (SourceCode command)"] = time.monotonic() - started
    return path


# --------------------------------------------------------------------------- installation


def test_v3_sdk_is_installed_without_v2():
    from importlib.metadata import version

    assert version("sagemaker").startswith("3."), version("sagemaker")
    assert int(version("sagemaker-core").split(".")[0]) >= 2
    with pytest.raises(ImportError):
        import sagemaker.estimator  # noqa: F401  (v2's Estimator is gone in v3)


# --------------------------------------------------------------------------- training


def test_model_trainer_local_container_writes_model(trained):
    """Needs the image to start `train` by itself (TRAINING_JOB_NAME): red with CMD ["serve"]."""
    with tarfile.open(trained) as tar:
        names = set(tar.getnames())
        metadata = json.load(tar.extractfile("metadata.json"))
    assert {"model.txt", "metadata.json"} <= names
    assert metadata["objective"] == "regression"
    assert len(metadata["feature_names"]) == 10


def test_model_trainer_gives_the_container_no_command(trained):
    """What the image must cope with: v3 sets neither command nor entrypoint, only TRAINING_JOB_NAME."""
    service = _service(trained.parent.parent)
    assert "command" not in service and "entrypoint" not in service
    assert any(e.startswith("TRAINING_JOB_NAME=lightgbm-v3-") for e in service["environment"])
    config = trained.parent.parent / "algo-1"  # removed after a successful job
    assert not config.exists()


def test_model_trainer_source_code_command_runs_train(model_tar):
    """Client-side alternative: SourceCode(command="train") works whatever the image's CMD is."""
    service = _service(model_tar.parent.parent)
    assert service["entrypoint"][0] == "/bin/bash"  # bash -c sm_drivers/sm_train.sh, which runs `train`
    with tarfile.open(model_tar) as tar:
        assert "model.txt" in tar.getnames()


def test_failing_training_job_raises(engine, train_dir, tmp_path):
    """Needs the image-side fix too (without it the container serves, and fails for another reason)."""
    with pytest.raises(RuntimeError, match="exited with code"):
        run_trainer(tmp_path, train_dir, {"num_boost_round": "many", "objective": "regression"})
    failure = tmp_path / "artifacts" / "output" / "failure"
    assert failure.exists() and "num_boost_round" in failure.read_text()


# --------------------------------------------------------------------------- serving


@pytest.fixture(scope="module")
def endpoint(model_tar, tmp_path_factory):
    """The trained model served by sagemaker.core.local (v3's copy of the v2 local-mode engine)."""
    import boto3
    from sagemaker.core.local import LocalSession

    work = tmp_path_factory.mktemp("endpoint")
    shutil.copy(model_tar, work / "model.tar.gz")  # the SDK extracts it next to itself
    session = LocalSession(
        boto_session=boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"]), sagemaker_config=NO_TELEMETRY
    )
    session.config = {"local": {"local_code": True, "serving_port": _free_port(), "container_root": str(work)}}
    client = session.sagemaker_client
    started = time.monotonic()
    client.create_model(
        ModelName="lgbm-v3",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"file://{work}/model.tar.gz", "Environment": {}},
    )
    client.create_endpoint_config(
        EndpointConfigName="lgbm-v3",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "lgbm-v3", "InitialInstanceCount": 1, "InstanceType": "local"}
        ],
    )
    client.create_endpoint(EndpointName="lgbm-v3", EndpointConfigName="lgbm-v3")
    TIMINGS["create_endpoint"] = time.monotonic() - started
    yield session
    started = time.monotonic()
    client.delete_endpoint(EndpointName="lgbm-v3")
    client.delete_endpoint_config(EndpointConfigName="lgbm-v3")
    client.delete_model(ModelName="lgbm-v3")
    TIMINGS["delete_endpoint"] = time.monotonic() - started


def _invoke(session, body: str, content_type: str, accept: str):
    answer = session.sagemaker_runtime_client.invoke_endpoint(
        EndpointName="lgbm-v3", Body=body, ContentType=content_type, Accept=accept
    )
    return answer["ResponseMetadata"]["HTTPStatusCode"], answer["Body"].read().decode()


def test_endpoint_is_in_service(endpoint):
    assert endpoint.sagemaker_client.describe_endpoint(EndpointName="lgbm-v3")["EndpointStatus"] == "InService"


def test_endpoint_csv_predictions_match_lightgbm(endpoint, model_tar, tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    with tarfile.open(model_tar) as tar:
        tar.extract("model.txt", tmp_path, **DATA_FILTER)
    expected = lightgbm.Booster(model_file=str(tmp_path / "model.txt")).predict(_rows())
    started = time.monotonic()
    status, body = _invoke(endpoint, _csv(_rows()), "text/csv", "text/csv")
    TIMINGS["invoke_endpoint (5 rows CSV)"] = time.monotonic() - started
    assert status == 200
    np.testing.assert_allclose(np.array(body.split(), dtype=float), expected, rtol=0, atol=1e-6)


def test_endpoint_json_matches_csv(endpoint):
    _, csv_body = _invoke(endpoint, _csv(_rows(2)), "text/csv", "text/csv")
    status, json_body = _invoke(endpoint, json.dumps(_rows(2).tolist()), "application/json", "application/json")
    assert status == 200
    answer = json.loads(json_body)
    predictions = answer["predictions"] if isinstance(answer, dict) else answer
    np.testing.assert_allclose(
        np.ravel(np.array(predictions, dtype=float)), np.array(csv_body.split(), dtype=float), atol=1e-9
    )


def test_endpoint_rejects_wrong_feature_count(endpoint):
    status, body = _invoke(endpoint, "1,2,3\n", "text/csv", "text/csv")
    assert status == 400 and "expected 10 features, got 3" in body


def test_model_builder_has_no_byoc_local_container_route(engine, model_tar, tmp_path):
    """Gap detector: ModelBuilder(mode=LOCAL_CONTAINER, image_uri=<own image>) builds a 'passthrough'
    model with no model server, and deploy() then starts no container (local_container_mode.py
    create_server has no branch for it). If this fails, v3 may have gained a BYOC local route."""
    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.serve import ModelBuilder
    from sagemaker.serve.builder.schema_builder import SchemaBuilder
    from sagemaker.serve.local_resources import LocalEndpoint
    from sagemaker.serve.mode.function_pointers import Mode

    session = Session(
        boto_session=boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"]), sagemaker_config=NO_TELEMETRY
    )
    session._default_bucket = "sagemaker-local-mode"  # private: build() resolves it (STS + S3) otherwise
    with tarfile.open(model_tar) as tar:
        tar.extractall(tmp_path / "model", **DATA_FILTER)
    builder = ModelBuilder(
        image_uri=IMAGE,
        model_path=str(tmp_path / "model"),
        mode=Mode.LOCAL_CONTAINER,
        role_arn=DUMMY_ROLE,
        sagemaker_session=session,
        schema_builder=SchemaBuilder(sample_input=_rows(1).tolist(), sample_output=[0.0]),
    )
    model = builder.build()
    assert model.primary_container.image == IMAGE
    assert builder.model_server is None  # passthrough: nothing that LocalContainerMode can start
    endpoint = LocalEndpoint(
        endpoint_name="never",
        endpoint_config_name="never",
        local_session=None,
        model_server=builder.model_server,
        local_container_mode_obj=builder.modes[str(Mode.LOCAL_CONTAINER)],
    )
    with pytest.raises(ValueError, match="Model server or container mode not available"):
        endpoint.invoke(body=_rows(1).tolist())
