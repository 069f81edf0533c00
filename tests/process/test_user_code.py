"""User code on the real `serve` (nginx + gunicorn, 2 workers): toolkit scripts and MMS custom services.

One real-server run per contract (a script, a custom service, multi-model code), and what only
real processes show: ``serve`` stopping at start, the code fetched and its requirements
installed before the workers, /ping through nginx, the compile switch. Each behaviour of the
contracts themselves is tested once, in-process: tests/unit/test_user_code_contracts.py.
The scripts are the ones in examples/ (what the README shows), copied into a SageMaker
layout the way the SDK's repack does (``/opt/ml/model/code/``), or pointed at with
``SAGEMAKER_SUBMIT_DIRECTORY``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

from support import (
    EXAMPLES,
    PROBE_PREDICT_FN,
    ROWS,
    Server,
    csv_body,
    example,
    failed_start,
    json_error,
    root_with_code,
    write_probe_wheel,
)

CSV = csv_body(ROWS)


def _values(response):
    assert response.status_code == 200, response.text
    return np.array([float(v) for v in response.text.replace(",", "\n").split()])


# ------------------------------------------------------------------ toolkit script mode


def test_the_documented_pandas_inference_py_runs_unchanged(tmp_path, trained_root, start_server, expected_rows):
    root = root_with_code(tmp_path, trained_root, {"inference.py": example("toolkit/pandas_inference.py")})
    server = start_server(root, SAGEMAKER_PROGRAM="inference.py", SAGEMAKER_SUBMIT_DIRECTORY="/opt/ml/model/code")
    for _ in range(4):  # both workers
        response = server.post(CSV)
        assert response.headers["Content-Type"] == "text/csv"
        np.testing.assert_allclose(_values(response), expected_rows, atol=1e-9)
    assert "serving mode: inference.py script" in server.logs() and "SAGEMAKER_PROGRAM=inference.py" in server.logs()


def test_a_model_fn_booster_predicts_with_the_compiled_trees(tmp_path, trained_root, start_server, expected_rows):
    """model_fn alone: the built-in steps answer, and the user's Booster switches to the background
    compile once it agrees with it (a real compile job and switch: tests/unit has the contract)."""
    root = root_with_code(tmp_path, trained_root, {"inference.py": example("toolkit/model_fn_only.py")})
    server = start_server(root)
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected_rows, atol=1e-9)
    server.wait_compiled()
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected_rows, atol=1e-9)


def test_a_function_with_the_wrong_number_of_parameters_is_refused_at_start(tmp_path, trained_root):
    root = root_with_code(tmp_path, trained_root, {"inference.py": "def predict_fn(data):\n    return data\n"})
    assert "predict_fn takes 1 arguments but 2 were given" in failed_start(root, tmp_path)


def test_a_named_program_that_is_missing_stops_serve(tmp_path, trained_root):
    root = root_with_code(tmp_path, trained_root, {"other.py": "x = 1\n"})
    logs = failed_start(root, tmp_path, SAGEMAKER_PROGRAM="serve_me.py")
    assert "SAGEMAKER_PROGRAM=serve_me.py but no such file" in logs


def test_a_model_fn_that_raises_makes_ping_say_why(tmp_path, trained_root):
    source = "def model_fn(model_dir):\n    raise RuntimeError('no model here')\n"
    root = root_with_code(tmp_path, trained_root, {"inference.py": source})
    server = Server(root, tmp_path / "serve.log")
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline:  # 503 all along: the server is starting, then the reason
            try:
                body = json_error(requests.get(server.url + "/ping", timeout=2), 503, "model_unavailable")
            except requests.ConnectionError:
                time.sleep(0.2)
                continue
            if "model_fn" in body["message"]:
                break
            time.sleep(0.05)
        assert body is not None and "model_fn raised RuntimeError: no model here" in body["message"], body
        assert json_error(server.post(CSV), 503)["message"] == body["message"]
        time.sleep(0.5)  # still failing: the workers stay up, and so does the reason
        assert json_error(requests.get(server.url + "/ping", timeout=2), 503)["message"] == body["message"]
    finally:
        server.stop()


def test_submit_directory_as_a_file_url(tmp_path, trained_root, start_server, expected_rows):
    code = tmp_path / "src"
    code.mkdir()
    (code / "serve_it.py").write_text(example("toolkit/pandas_inference.py"))
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    server = start_server(root, SAGEMAKER_PROGRAM="serve_it.py", SAGEMAKER_SUBMIT_DIRECTORY=f"file://{code}")
    np.testing.assert_allclose(_values(server.post(CSV)), expected_rows, atol=1e-9)


def test_submit_directory_from_s3(tmp_path, trained_root, start_server, expected_rows, aws_emulator):
    """The SDK uploads sourcedir.tar.gz for Model(entry_point=...) without source_dir; moto stands in for S3."""
    import tarfile

    import boto3

    archive = tmp_path / "sourcedir.tar.gz"
    script = tmp_path / "inference.py"
    script.write_text(example("toolkit/pandas_inference.py"))
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(script, arcname="inference.py")
    aws = {
        "AWS_ENDPOINT_URL": aws_emulator,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=aws_emulator,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="code-bucket")
    s3.upload_file(str(archive), "code-bucket", "job/source/sourcedir.tar.gz")
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    server = start_server(
        root,
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_SUBMIT_DIRECTORY="s3://code-bucket/job/source/sourcedir.tar.gz",
        **aws,
    )
    np.testing.assert_allclose(_values(server.post(CSV)), expected_rows, atol=1e-9)
    assert "downloaded s3://code-bucket/job/source/sourcedir.tar.gz" in server.logs()
    logs = failed_start(
        root,
        tmp_path,
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_SUBMIT_DIRECTORY="s3://code-bucket/missing.tar.gz",
        **aws,
    )
    assert "cannot download it" in logs


# ------------------------------------------------------------------ requirements.txt


@pytest.fixture
def probe_wheel(tmp_path):
    """lgbmc-probe, a tiny wheel, uninstalled afterwards (this process' venv is writable: it installs there)."""
    yield write_probe_wheel(tmp_path / "wheels")
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "lgbmc-probe"], capture_output=True)


def test_requirements_install_from_vendored_wheels_before_workers_start(
    tmp_path, trained_root, start_server, expected_rows, probe_wheel
):
    source = example("toolkit/model_fn_only.py") + PROBE_PREDICT_FN
    root = root_with_code(tmp_path, trained_root, {"inference.py": source, "requirements.txt": "lgbmc-probe==1.0\n"})
    (root / "model" / "code" / "lib").mkdir()
    shutil.copy(probe_wheel, root / "model" / "code" / "lib")
    server = start_server(root)
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected_rows * 3, atol=1e-9)
    logs = server.logs()
    assert "from the wheels in lib/" in logs and "installed " in logs
    assert logs.index("installed ") < logs.index("Booting worker")  # once, before any worker


def test_a_failed_install_stops_serve_with_pips_error(tmp_path, trained_root, probe_wheel):
    root = root_with_code(
        tmp_path,
        trained_root,
        {"inference.py": example("toolkit/model_fn_only.py"), "requirements.txt": "no-such-package-anywhere==9.9\n"},
    )
    (root / "model" / "code" / "lib").mkdir()
    shutil.copy(probe_wheel, root / "model" / "code" / "lib")
    logs = failed_start(root, tmp_path)
    assert "pip: " in logs and "no-such-package-anywhere" in logs and "pip could not install" in logs
    assert logs.count("installing ") == 1  # no retry loop


# ------------------------------------------------------------------ MMS custom services


def test_mms_documented_model_handler_with_a_model_archive_manifest(
    tmp_path, trained_root, start_server, expected_rows
):
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    shutil.copy(EXAMPLES / "mms" / "model_handler.py", root / "model")
    (root / "model" / "MAR-INF").mkdir()
    (root / "model" / "MAR-INF" / "MANIFEST.json").write_text(
        json.dumps({"runtime": "python", "model": {"modelName": "diabetes", "handler": "model_handler:handle"}})
    )
    server = start_server(root)
    for _ in range(4):
        np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected_rows, atol=1e-9)
    assert "model.handler in MAR-INF/MANIFEST.json" in server.logs()


# ------------------------------------------------------------------ multi-model


def test_multi_model_container_wide_code_serves_every_model(tmp_path, trained_root, start_server, expected_rows):
    code = tmp_path / "src"
    code.mkdir()
    (code / "inference.py").write_text(
        "def output_fn(prediction, accept):\n    return ','.join(f'{v:.6f}' for v in prediction), 'text/plain'\n"
    )
    root = tmp_path / "ml"
    for name in ("a", "b"):
        shutil.copytree(trained_root / "model", root / "models" / name / "model")
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true", SAGEMAKER_SUBMIT_DIRECTORY=f"file://{code}")
    for name in ("a", "b", "a", "b"):
        response = server.post(CSV, **{"X-Amzn-SageMaker-Target-Model": name})
        assert response.headers["Content-Type"] == "text/plain", response.text
        np.testing.assert_allclose([float(v) for v in response.text.split(",")], expected_rows, atol=1e-5)
