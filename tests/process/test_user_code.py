"""User code on the real `serve` (nginx + gunicorn, 2 workers): toolkit scripts and MMS custom services.

The scripts are the ones in examples/ (what the README shows), copied into a SageMaker
layout the way the SDK's repack does (``/opt/ml/model/code/``), or pointed at with
``SAGEMAKER_SUBMIT_DIRECTORY``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import time
import zipfile

import lightgbm as lgb
import numpy as np
import pytest
import requests

from support import REPO, Server, json_error

EXAMPLES = REPO / "examples"
ROWS = [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87], [48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69]]
CSV = "\n".join(",".join(map(str, row)) for row in ROWS)


@pytest.fixture(scope="module")
def expected(trained_root):
    return lgb.Booster(model_file=str(trained_root / "model" / "model.txt")).predict(np.array(ROWS, dtype=float))


def _root_with_code(tmp_path, trained_root, files: dict[str, str], code_dir: str = "code"):
    """A model directory as the SDK repacks it: the model files plus ``code/`` (files: name -> source)."""
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    for name, source in files.items():
        path = root / "model" / code_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def _example(path: str) -> str:
    return (EXAMPLES / path).read_text()


def _values(response):
    assert response.status_code == 200, response.text
    return np.array([float(v) for v in response.text.replace(",", "\n").split()])


def _failed_start(root, tmp_path, **env) -> str:
    server = Server(root, tmp_path / "failed.log", **env)
    try:
        assert server.process.wait(timeout=60) != 0
        return server.logs()
    finally:
        server.stop()


# ------------------------------------------------------------------ toolkit script mode


def test_the_documented_pandas_inference_py_runs_unchanged(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/pandas_inference.py")})
    server = start_server(root, SAGEMAKER_PROGRAM="inference.py", SAGEMAKER_SUBMIT_DIRECTORY="/opt/ml/model/code")
    for _ in range(4):  # both workers
        response = server.post(CSV)
        assert response.headers["Content-Type"] == "text/csv"
        np.testing.assert_allclose(_values(response), expected, atol=1e-9)
    assert "serving mode: inference.py script" in server.logs() and "SAGEMAKER_PROGRAM=inference.py" in server.logs()


def test_inference_py_is_found_without_any_variable(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/transform_only.py")})
    server = start_server(root)
    np.testing.assert_allclose(_values(server.post(CSV)), expected, atol=1e-9)
    assert "inference.py found" in server.logs()


def test_model_fn_only_uses_the_built_in_steps(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/model_fn_only.py")})
    server = start_server(root)
    answer = server.post(CSV)  # no Accept: the toolkit's default, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (application/json)
    assert answer.headers["Content-Type"] == "application/json"
    np.testing.assert_allclose(answer.json()["predictions"], expected, atol=1e-9)
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected, atol=1e-9)
    body = json_error(server.post("1,2,3", accept="text/csv"), 400)  # the built-in validation still speaks
    assert "expected 10 features, got 3" in body["message"]
    json_error(server.post(CSV, accept="image/png"), 406)  # the toolkit would answer 500 here
    json_error(server.post(CSV, "image/png"), 415)
    server.wait_compiled()  # the user's Booster agreed with the compiled trees: compiled speed for it too
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected, atol=1e-9)


def test_default_accept_is_configurable(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/model_fn_only.py")})
    server = start_server(root, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="text/csv")
    np.testing.assert_allclose(_values(server.post(CSV, accept="*/*")), expected, atol=1e-9)


def test_input_fn_only_falls_back_to_the_built_in_model_predict_and_output(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/input_fn_only.py")})
    server = start_server(root)
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected, atol=1e-9)


def test_functions_with_the_context_argument(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/with_context.py")})
    server = start_server(root)
    response = server.post(CSV, accept="*/*", **{"X-Amzn-SageMaker-Custom-Attributes": "scale=2",
                                                  "X-Amzn-SageMaker-Inference-Id": "req-7"})
    assert response.status_code == 200, response.text
    assert response.json()["accept"] == "application/json"  # */* became the default accept
    np.testing.assert_allclose(response.json()["predictions"], expected * 2, atol=1e-9)
    assert response.headers["X-Request-Seen"] == "req-7"


def test_transform_fn_with_input_fn_is_refused_at_start(tmp_path, trained_root):
    source = _example("toolkit/transform_only.py") + "\n\ndef input_fn(data, content_type):\n    return data\n"
    root = _root_with_code(tmp_path, trained_root, {"inference.py": source})
    logs = _failed_start(root, tmp_path)
    assert "Cannot use transform_fn implementation in conjunction with input_fn" in logs


def test_a_function_with_the_wrong_number_of_parameters_is_refused_at_start(tmp_path, trained_root):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": "def predict_fn(data):\n    return data\n"})
    assert "predict_fn takes 1 arguments but 2 were given" in _failed_start(root, tmp_path)


def test_a_named_program_that_is_missing_stops_serve(tmp_path, trained_root):
    root = _root_with_code(tmp_path, trained_root, {"other.py": "x = 1\n"})
    logs = _failed_start(root, tmp_path, SAGEMAKER_PROGRAM="serve_me.py")
    assert "SAGEMAKER_PROGRAM=serve_me.py but no such file" in logs


def test_an_import_error_stops_serve_with_the_cause(tmp_path, trained_root):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": "import not_installed_anywhere\n"})
    logs = _failed_start(root, tmp_path, SAGEMAKER_PROGRAM="inference.py")
    assert "No module named 'not_installed_anywhere'" in logs


def test_user_errors_are_json_naming_the_function(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/raising.py")})
    server = start_server(root)
    body = json_error(server.post("reject"), 422)  # a toolkit error keeps its status and message
    assert body == {"error": "user_code_error", "message": "input_fn raised GenericInferenceToolkitError: the payload says reject",
                    "type": "GenericInferenceToolkitError", "function": "input_fn"}
    body = json_error(server.post("crash"), 500)
    assert body["function"] == "input_fn" and body["message"] == "input_fn raised ValueError: cannot parse the row"
    assert "Traceback" not in json.dumps(body) and "Traceback" in server.logs()  # the trace goes to the log only


def test_a_model_fn_that_raises_makes_ping_say_why(tmp_path, trained_root):
    source = "def model_fn(model_dir):\n    raise RuntimeError('no model here')\n"
    root = _root_with_code(tmp_path, trained_root, {"inference.py": source})
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


def test_submit_directory_as_a_file_url(tmp_path, trained_root, start_server, expected):
    code = tmp_path / "src"
    code.mkdir()
    (code / "serve_it.py").write_text(_example("toolkit/pandas_inference.py"))
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    server = start_server(root, SAGEMAKER_PROGRAM="serve_it.py", SAGEMAKER_SUBMIT_DIRECTORY=f"file://{code}")
    np.testing.assert_allclose(_values(server.post(CSV)), expected, atol=1e-9)


def test_submit_directory_from_s3(tmp_path, trained_root, start_server, expected, aws_emulator):
    """The SDK uploads sourcedir.tar.gz for Model(entry_point=...) without source_dir; moto stands in for S3."""
    import tarfile

    import boto3

    archive = tmp_path / "sourcedir.tar.gz"
    script = tmp_path / "inference.py"
    script.write_text(_example("toolkit/pandas_inference.py"))
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(script, arcname="inference.py")
    aws = {"AWS_ENDPOINT_URL": aws_emulator, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    s3 = boto3.client("s3", endpoint_url=aws_emulator, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="code-bucket")
    s3.upload_file(str(archive), "code-bucket", "job/source/sourcedir.tar.gz")
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    server = start_server(root, SAGEMAKER_PROGRAM="inference.py",
                          SAGEMAKER_SUBMIT_DIRECTORY="s3://code-bucket/job/source/sourcedir.tar.gz", **aws)
    np.testing.assert_allclose(_values(server.post(CSV)), expected, atol=1e-9)
    assert "downloaded s3://code-bucket/job/source/sourcedir.tar.gz" in server.logs()
    logs = _failed_start(root, tmp_path, SAGEMAKER_PROGRAM="inference.py",
                         SAGEMAKER_SUBMIT_DIRECTORY="s3://code-bucket/missing.tar.gz", **aws)
    assert "cannot download it" in logs


# ------------------------------------------------------------------ requirements.txt


@pytest.fixture
def probe_wheel(tmp_path):
    """A tiny pure-Python wheel written here (a wheel is a zip with a fixed layout), uninstalled afterwards."""
    files = {
        "lgbmc_probe/__init__.py": b"SCALE = 3.0\n",
        "lgbmc_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: lgbmc-probe\nVersion: 1.0\n",
        "lgbmc_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files["lgbmc_probe-1.0.dist-info/RECORD"] = ("\n".join(record) + "\nlgbmc_probe-1.0.dist-info/RECORD,,\n").encode()
    wheel = tmp_path / "wheels" / "lgbmc_probe-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    yield wheel
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "lgbmc-probe"], capture_output=True)


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_requirements_install_from_vendored_wheels_before_workers_start(tmp_path, trained_root, start_server, expected, probe_wheel):
    source = _example("toolkit/model_fn_only.py") + (
        "\n\nimport lgbmc_probe\n\n\ndef predict_fn(data, model):\n"
        "    return model.predict(data.values) * lgbmc_probe.SCALE\n"
    )
    root = _root_with_code(tmp_path, trained_root, {"inference.py": source, "requirements.txt": "lgbmc-probe==1.0\n"})
    (root / "model" / "code" / "lib").mkdir()
    shutil.copy(probe_wheel, root / "model" / "code" / "lib")
    server = start_server(root)
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected * 3, atol=1e-9)
    logs = server.logs()
    assert "from the wheels in lib/" in logs and "installed " in logs
    assert logs.index("installed ") < logs.index("Booting worker")  # once, before any worker


def test_a_failed_install_stops_serve_with_pips_error(tmp_path, trained_root, probe_wheel):
    root = _root_with_code(tmp_path, trained_root, {"inference.py": _example("toolkit/model_fn_only.py"),
                                                    "requirements.txt": "no-such-package-anywhere==9.9\n"})
    (root / "model" / "code" / "lib").mkdir()
    shutil.copy(probe_wheel, root / "model" / "code" / "lib")
    logs = _failed_start(root, tmp_path)
    assert "pip: " in logs and "no-such-package-anywhere" in logs and "pip could not install" in logs
    assert logs.count("installing ") == 1  # no retry loop


# ------------------------------------------------------------------ MMS custom services


def test_mms_documented_model_handler_with_a_model_archive_manifest(tmp_path, trained_root, start_server, expected):
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    shutil.copy(EXAMPLES / "mms" / "model_handler.py", root / "model")
    (root / "model" / "MAR-INF").mkdir()
    (root / "model" / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(
        {"runtime": "python", "model": {"modelName": "diabetes", "handler": "model_handler:handle"}}
    ))
    server = start_server(root)
    for _ in range(4):
        np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected, atol=1e-9)
    assert "model.handler in MAR-INF/MANIFEST.json" in server.logs()


def test_mms_class_service_named_by_sagemaker_handler(tmp_path, trained_root, start_server, expected):
    root = _root_with_code(tmp_path, trained_root, {"class_service.py": _example("mms/class_service.py")})
    server = start_server(root, SAGEMAKER_HANDLER="class_service")
    response = requests.post(server.url + "/invocations?source=unit", json={"instances": ROWS}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json", response.text
    np.testing.assert_allclose(response.json()["scores"], expected, atol=1e-9)
    assert response.json()["source"] == "unit"  # query parameters reach data[i] as MMS passes them


def test_mms_handler_breaking_the_list_contract_gets_an_explanation(tmp_path, trained_root, start_server):
    source = "def handle(data, context):\n    return [] if data is not None else None\n"
    root = _root_with_code(tmp_path, trained_root, {"service.py": source})
    server = start_server(root, SAGEMAKER_HANDLER="service:handle")
    body = json_error(server.post(CSV), 500)
    assert "must return a list with one item per request" in body["message"] and body["function"] == "handle"


# ------------------------------------------------------------------ multi-model


def test_multi_model_models_with_clashing_module_names(tmp_path, trained_root, start_server, expected):
    """Two models, each with code/inference.py and code/features.py: each sees only its own."""
    root = tmp_path / "ml"
    for name, scale in (("one", 1.0), ("two", 10.0)):
        model_dir = root / "models" / name / "model"
        shutil.copytree(trained_root / "model", model_dir)
        (model_dir / "code").mkdir()
        (model_dir / "code" / "features.py").write_text(f"SCALE = {scale}\n")
        (model_dir / "code" / "inference.py").write_text(
            "import features\n\n\ndef predict_fn(data, model):\n    return model.predict(model.validate(data, 10**6)) * features.SCALE\n"
        )
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true")
    for _ in range(3):  # interleaved, on both workers
        for name, scale in (("one", 1.0), ("two", 10.0)):
            response = server.post(CSV, accept="text/csv", **{"X-Amzn-SageMaker-Target-Model": name})
            np.testing.assert_allclose(_values(response), expected * scale, atol=1e-6)
    assert "inference.py script" in server.logs()


def test_pre_model_fn_and_model_warmup_fn_run_around_model_fn(tmp_path, trained_root, start_server, expected):
    source = _example("toolkit/model_fn_only.py") + (
        "\n\nimport logging\n\n\ndef pre_model_fn(model_dir):\n    logging.getLogger('user').warning('pre_model_fn %s', model_dir)\n"
        "\n\ndef model_warmup_fn(model_dir, model):\n    logging.getLogger('user').warning('warmed %d trees', model.num_trees())\n"
    )
    root = _root_with_code(tmp_path, trained_root, {"inference.py": source})
    server = start_server(root)
    np.testing.assert_allclose(_values(server.post(CSV, accept="text/csv")), expected, atol=1e-9)
    deadline = time.monotonic() + 30  # /ping answers once one worker is up; the other may still be loading
    while server.logs().count("warmed ") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    logs = server.logs()
    assert logs.count("pre_model_fn ") == 2 and logs.count("warmed ") == 2  # once per worker, before its traffic
    assert logs.index("pre_model_fn ") < logs.index("warmed ")


def test_multi_model_container_wide_code_serves_every_model(tmp_path, trained_root, start_server, expected):
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
        np.testing.assert_allclose([float(v) for v in response.text.split(",")], expected, atol=1e-5)
