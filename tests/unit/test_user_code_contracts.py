"""User code's contracts in-process: SageMaker Inference Toolkit scripts and MMS custom services.

The app ``serve``'s workers run, driven by Flask's test client, with the user files of
examples/ (what the README shows) laid out as the SDK repacks them. Each behaviour is here
once; tests/process keeps one real-server run per contract and what only real processes show
(``serve`` stopping at start, requirements installs, downloads, /ping through nginx).
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from lightgbm_container.errors import UserCodeSetupError
from support import ROWS, csv_body, example, in_process_app, json_error, npy_body, root_with_code

CSV = csv_body(ROWS)
TARGET = "X-Amzn-SageMaker-Target-Model"


def _client(tmp_path, trained_root, files: dict[str, str], **env: str):
    return in_process_app(root_with_code(tmp_path, trained_root, files), **env).test_client()


def _post(client, body=CSV, content_type="text/csv", accept=None, **headers):
    if accept is not None:
        headers["Accept"] = accept
    return client.post("/invocations", data=body, content_type=content_type, headers=headers)


def _values(response) -> np.ndarray:
    assert response.status_code == 200, response.get_data(as_text=True)
    return np.array([float(v) for v in response.get_data(as_text=True).replace(",", "\n").split()])


# ------------------------------------------------------------------ toolkit scripts


def test_inference_py_is_found_without_any_variable(tmp_path, trained_root, expected_rows):
    client = _client(tmp_path, trained_root, {"inference.py": example("toolkit/transform_only.py")})
    np.testing.assert_allclose(_values(_post(client)), expected_rows, atol=1e-9)


def test_model_fn_only_uses_the_built_in_steps(tmp_path, trained_root, expected_rows):
    client = _client(tmp_path, trained_root, {"inference.py": example("toolkit/model_fn_only.py")})
    answer = _post(client)  # no Accept: the toolkit's default, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (application/json)
    assert answer.headers["Content-Type"] == "application/json"
    np.testing.assert_allclose(answer.get_json()["predictions"], expected_rows, atol=1e-9)
    np.testing.assert_allclose(_values(_post(client, accept="text/csv")), expected_rows, atol=1e-9)
    body = json_error(_post(client, "1,2,3", accept="text/csv"), 400)  # the built-in validation still speaks
    assert "expected 10 features, got 3" in body["message"]
    json_error(_post(client, accept="image/png"), 406)  # the toolkit would answer 500 here
    json_error(_post(client, content_type="image/png"), 415)


@pytest.mark.parametrize("accept", ["*/*", None, "application/*"])
def test_default_accept_is_configurable(tmp_path, trained_root, expected_rows, accept):
    client = _client(
        tmp_path,
        trained_root,
        {"inference.py": example("toolkit/model_fn_only.py")},
        SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="text/csv",
    )
    response = _post(client, accept=accept)
    if accept == "application/*":  # a range the default does not fit: the built-in output_fn picks JSON
        assert response.headers["Content-Type"] == "application/json"
    else:
        np.testing.assert_allclose(_values(response), expected_rows, atol=1e-9)


def test_input_fn_only_falls_back_to_the_built_in_model_predict_and_output(tmp_path, trained_root, expected_rows):
    client = _client(tmp_path, trained_root, {"inference.py": example("toolkit/input_fn_only.py")})
    np.testing.assert_allclose(_values(_post(client, accept="text/csv")), expected_rows, atol=1e-9)


def test_functions_with_the_context_argument(tmp_path, trained_root, expected_rows):
    client = _client(tmp_path, trained_root, {"inference.py": example("toolkit/with_context.py")})
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "scale=2", "X-Amzn-SageMaker-Inference-Id": "req-7"}
    response = _post(client, accept="*/*", **headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["accept"] == "application/json"  # */* became the default accept
    np.testing.assert_allclose(response.get_json()["predictions"], expected_rows * 2, atol=1e-9)
    assert response.headers["X-Request-Seen"] == "req-7"


def test_a_verbose_accept_reaches_output_fn_as_sent(tmp_path, trained_root):
    """The toolkit hands output_fn the header itself (the built-in algorithm's script tests it for ';verbose')."""
    source = (
        example("toolkit/model_fn_only.py")
        + "\n\ndef output_fn(prediction, accept):\n    return accept, 'text/plain'\n"
    )
    client = _client(tmp_path, trained_root, {"inference.py": source})
    assert _post(client, accept="application/json;verbose").get_data(as_text=True) == "application/json;verbose"
    assert _post(client, accept="*/*").get_data(as_text=True) == "application/json"


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "def model_fn(model_dir):\n    return None\n\ndef transform_fn(m, d, c, a):\n    return d\n\n"
            "def input_fn(data, content_type):\n    return data\n",
            "Cannot use transform_fn implementation in conjunction with input_fn",
        ),
        ("def predict_fn(data):\n    return data\n", "predict_fn takes 1 arguments but 2 were given"),
        ("import not_installed_anywhere\n", "No module named 'not_installed_anywhere'"),
        ("predict_fn = 3\n", "predict_fn is a int, not a function"),
    ],
)
def test_a_script_that_cannot_run_is_refused_when_the_worker_starts(tmp_path, trained_root, source, message):
    with pytest.raises(UserCodeSetupError, match=message):
        _client(tmp_path, trained_root, {"inference.py": source})


def test_user_errors_are_json_naming_the_function(tmp_path, trained_root, caplog):
    client = _client(tmp_path, trained_root, {"inference.py": example("toolkit/raising.py")})
    body = json_error(_post(client, "reject"), 422)  # a toolkit error keeps its status and message
    assert body == {
        "error": "user_code_error",
        "message": "input_fn raised GenericInferenceToolkitError: the payload says reject",
        "type": "GenericInferenceToolkitError",
        "function": "input_fn",
    }
    with caplog.at_level(logging.ERROR, logger="user_code"):
        body = json_error(_post(client, "crash"), 500)
    assert body["function"] == "input_fn" and body["message"] == "input_fn raised ValueError: cannot parse the row"
    assert (
        "Traceback" not in json.dumps(body) and "cannot parse the row" in caplog.text
    )  # the trace goes to the log only
    assert any(record.exc_info for record in caplog.records)


def test_a_model_fn_that_raises_keeps_the_worker_up_and_says_why(tmp_path, trained_root):
    client = _client(
        tmp_path, trained_root, {"inference.py": "def model_fn(model_dir):\n    raise RuntimeError('no model here')\n"}
    )
    body = json_error(client.get("/ping"), 503, "model_unavailable")
    assert "model_fn raised RuntimeError: no model here" in body["message"]
    assert json_error(_post(client), 503)["message"] == body["message"]


def test_pre_model_fn_and_model_warmup_fn_run_around_model_fn(tmp_path, trained_root, expected_rows, caplog):
    source = example("toolkit/model_fn_only.py") + (
        "\n\nimport logging\n\n\ndef pre_model_fn(model_dir):\n"
        "    logging.getLogger('user').warning('pre_model_fn %s', model_dir)\n"
        "\n\ndef model_warmup_fn(model_dir, model):\n"
        "    logging.getLogger('user').warning('warmed %d trees', model.num_trees())\n"
    )
    with caplog.at_level(logging.WARNING, logger="user"):
        client = _client(tmp_path, trained_root, {"inference.py": source})
    messages = [record.getMessage() for record in caplog.records if record.name == "user"]
    assert [message.split()[0] for message in messages] == ["pre_model_fn", "warmed"]  # before any request
    np.testing.assert_allclose(_values(_post(client, accept="text/csv")), expected_rows, atol=1e-9)


# ------------------------------------------------------------------ MMS custom services


def test_mms_class_service_named_by_sagemaker_handler(tmp_path, trained_root, expected_rows):
    client = _client(
        tmp_path, trained_root, {"class_service.py": example("mms/class_service.py")}, SAGEMAKER_HANDLER="class_service"
    )
    response = client.post("/invocations?source=unit", json={"instances": ROWS})
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json", response.get_data()
    np.testing.assert_allclose(response.get_json()["scores"], expected_rows, atol=1e-9)
    assert response.get_json()["source"] == "unit"  # query parameters reach data[i] as MMS passes them


def test_mms_handler_breaking_the_list_contract_gets_an_explanation(tmp_path, trained_root):
    source = "def handle(data, context):\n    return [] if data is not None else None\n"
    client = _client(tmp_path, trained_root, {"service.py": source}, SAGEMAKER_HANDLER="service:handle")
    body = json_error(_post(client), 500)
    assert "must return a list with one item per request" in body["message"] and body["function"] == "handle"


@pytest.mark.parametrize(
    "accept, content_type",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("text/csv, */*;q=0.1", "text/csv"),
    ],
)
def test_a_custom_service_answer_is_labelled_with_the_negotiated_type(tmp_path, trained_root, accept, content_type):
    source = "def handle(data, context):\n    return None if data is None else ['1.0']\n"
    client = _client(tmp_path, trained_root, {"service.py": source}, SAGEMAKER_HANDLER="service")
    assert _post(client, accept=accept).headers["Content-Type"] == content_type


# ------------------------------------------------------------------ multi-model


def test_multi_model_models_with_clashing_module_names(tmp_path, trained_root, expected_rows):
    """Two models, each with code/inference.py and code/features.py: each sees only its own."""
    root = tmp_path / "ml"
    for name, scale in (("one", 1.0), ("two", 10.0)):
        model_dir = root / "models" / name / "model"
        shutil.copytree(trained_root / "model", model_dir)
        (model_dir / "code").mkdir()
        (model_dir / "code" / "features.py").write_text(f"SCALE = {scale}\n")
        (model_dir / "code" / "inference.py").write_text(
            "import features\n\n\ndef predict_fn(data, model):\n    return model.predict(data) * features.SCALE\n"
        )
    client = in_process_app(root, SAGEMAKER_MULTI_MODEL="true").test_client()
    for _ in range(2):
        for name, scale in (("one", 1.0), ("two", 10.0)):
            np.testing.assert_allclose(
                _values(_post(client, accept="text/csv", **{TARGET: name})), expected_rows * scale, atol=1e-6
            )


def test_multi_model_container_wide_code_serves_every_model(tmp_path, trained_root, expected_rows):
    code = tmp_path / "src"
    code.mkdir()
    (code / "inference.py").write_text(
        "def output_fn(prediction, accept):\n    return ','.join(f'{v:.6f}' for v in prediction), 'text/plain'\n"
    )
    root = tmp_path / "ml"
    for name in ("a", "b"):
        shutil.copytree(trained_root / "model", root / "models" / name / "model")
    client = in_process_app(
        root, SAGEMAKER_MULTI_MODEL="true", SAGEMAKER_SUBMIT_DIRECTORY=f"file://{code}"
    ).test_client()
    for name in ("a", "b", "a", "b"):
        response = _post(client, **{TARGET: name})
        assert response.headers["Content-Type"] == "text/plain", response.get_data()
        np.testing.assert_allclose(
            [float(v) for v in response.get_data(as_text=True).split(",")], expected_rows, atol=1e-5
        )


# ------------------------------------------------------------------ scripts mixing their functions with the defaults

MODEL_AND_PREDICT = """
import os

import lightgbm as lgb
import numpy as np


def model_fn(model_dir):
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))


def predict_fn(data, model):
    assert isinstance(data, np.ndarray), type(data)  # the toolkit's decoder gives an array
    return model.predict(data)
"""


@pytest.mark.parametrize(
    "content_type, accept",
    [
        ("text/csv", "application/json"),
        ("application/json", "application/json"),
        ("text/csv", "text/csv"),
        ("application/x-npy", "application/x-npy"),
    ],
)
def test_a_predict_fn_without_input_fn_or_output_fn_gets_the_toolkits_defaults(
    tmp_path, trained_root, expected_rows, content_type, accept
):
    """AWS's own local-mode sample defines model_fn and predict_fn only: predict_fn gets what the
    toolkit's decoder makes of the body, and the answer is the toolkit's encoding of the array."""
    from sagemaker_inference import decoder, encoder

    client = _client(tmp_path, trained_root, {"inference.py": MODEL_AND_PREDICT})
    body = {
        "text/csv": CSV,
        "application/json": json.dumps(ROWS),
        "application/x-npy": npy_body(np.array(ROWS, dtype=float)),
    }[content_type]
    response = _post(client, body, content_type=content_type, accept=accept)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == accept
    decoded = decoder.decode(body, content_type)
    from_toolkit = encoder.encode(lgb_predict(trained_root, decoded), accept)
    assert response.get_data() == (from_toolkit.encode() if isinstance(from_toolkit, str) else from_toolkit)


def lgb_predict(trained_root, rows):
    import lightgbm as lgb

    return lgb.Booster(model_file=str(trained_root / "model" / "model.txt")).predict(rows)


def test_the_toolkits_default_input_fn_refuses_a_type_it_cannot_decode_with_a_415(tmp_path, trained_root):
    client = _client(tmp_path, trained_root, {"inference.py": MODEL_AND_PREDICT})
    body = json_error(_post(client, "[[1]]", content_type="application/jsonlines"), 415)
    assert "the SageMaker Inference Toolkit's default input_fn decodes" in body["message"]
    body = json_error(_post(client, accept="application/jsonlines"), 406)
    assert "the SageMaker Inference Toolkit's default output_fn encodes" in body["message"]


def test_the_built_in_predict_fn_takes_what_a_user_input_fn_returns(tmp_path, trained_root, expected_rows):
    for returned in (
        "pd.read_csv(io.StringIO(input_data), header=None)",
        "np.array([[float(v) for v in line.split(',')] for line in input_data.splitlines()])",
        "[[float(v) for v in line.split(',')] for line in input_data.splitlines()]",
    ):
        source = f"import io\nimport numpy as np\nimport pandas as pd\n\n\ndef input_fn(input_data, content_type):\n    return {returned}\n"
        client = _client(tmp_path / str(hash(returned)), trained_root, {"inference.py": source})
        np.testing.assert_allclose(_values(_post(client, accept="text/csv")), expected_rows, atol=1e-9)


def test_an_lgbm_classifier_from_model_fn_answers_probabilities_not_labels(tmp_path, trained_root, pickles):
    model_file, model, inputs = pickles["binary"]
    root = root_with_code(
        tmp_path,
        trained_root,
        {
            "inference.py": (
                "import os\nimport joblib\n\n\ndef model_fn(model_dir):\n    return joblib.load(os.path.join(model_dir, 'binary.joblib'))\n"
            )
        },
    )
    (root / "model" / "model.txt").unlink()
    (root / "model" / "metadata.json").unlink()
    shutil.copy(model_file, root / "model" / "binary.joblib")
    client = in_process_app(root).test_client()
    answer = _post(client, csv_body(inputs[:5]), accept="application/json")
    np.testing.assert_allclose(answer.get_json()["predictions"], model.predict_proba(inputs[:5])[:, 1], atol=1e-9)
