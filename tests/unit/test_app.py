"""The HTTP layer in-process (Flask's test client): routes, negotiation, every error's JSON shape.

The same behaviours run against the real nginx + gunicorn in tests/process; these run in
milliseconds and pinpoint the app when a real-server test fails.
"""

import io
import json
import shutil

import numpy as np
import pytest

from lightgbm_container.settings import Runtime, handoff_json, read_handoff, serving_settings
from support import in_process_app, json_error

ROW = "59,2,32.1,101,157,93.2,38,4,4.8598,87"


@pytest.fixture(scope="module")
def client(trained_root):
    return in_process_app(trained_root).test_client()


def _row():
    return np.array([[float(v) for v in ROW.split(",")]])


def test_ping_and_execution_parameters(client):
    assert client.get("/ping").status_code == 200 and client.get("/ping").data == b""
    assert client.get("/execution-parameters").get_json() == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_every_content_type_answers_the_booster(client, booster):
    expected = booster.predict(_row())[0]
    response = client.post("/invocations", data=ROW, content_type="text/csv")
    assert response.headers["Content-Type"] == "text/csv" and float(response.data) == pytest.approx(expected, abs=1e-9)
    response = client.post("/invocations", data=json.dumps([_row()[0].tolist()]), content_type="application/json")
    assert response.get_json()["predictions"] == pytest.approx([expected], abs=1e-9)
    response = client.post("/invocations", data=json.dumps(_row()[0].tolist()), content_type="application/jsonlines")
    assert float(response.data) == pytest.approx(expected, abs=1e-9)
    buffer = io.BytesIO()
    np.save(buffer, _row())
    response = client.post("/invocations", data=buffer.getvalue(), content_type="application/x-npy")
    assert np.load(io.BytesIO(response.data)) == pytest.approx([expected], abs=1e-9)


@pytest.mark.parametrize(
    "accept, media_type",
    [
        (None, "text/csv"),
        ("*/*", "text/csv"),
        ("application/json", "application/json"),
        ("application/jsonlines", "application/jsonlines"),
        ("text/csv;q=0.1, application/x-npy", "application/x-npy"),
    ],
)
def test_accept_negotiation(client, accept, media_type):
    headers = {"Accept": accept} if accept else {}
    assert (
        client.post("/invocations", data=ROW, content_type="text/csv", headers=headers).headers["Content-Type"]
        == media_type
    )


def test_a_missing_accept_takes_sagemaker_default_invocations_accept_when_it_is_set(trained_root, booster):
    """An inference pipeline passes each step's answer on with this variable's type."""
    piped = in_process_app(trained_root, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="application/json").test_client()
    for headers in ({}, {"Accept": "*/*"}):
        answer = piped.post("/invocations", data=ROW, content_type="text/csv", headers=headers)
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.get_json()["predictions"] == pytest.approx(booster.predict(_row()).tolist(), abs=1e-9)
    named = piped.post("/invocations", data=ROW, content_type="text/csv", headers={"Accept": "text/csv"})
    assert named.headers["Content-Type"] == "text/csv"  # an Accept the request names still wins


@pytest.mark.parametrize(
    "method, path, body, content_type, accept, status, code",
    [
        ("POST", "/invocations", "1,2,3", "text/csv", None, 400, "bad_request"),
        ("POST", "/invocations", "", "text/csv", None, 400, "empty_body"),
        ("POST", "/invocations", ROW, "image/png", None, 415, "unsupported_media_type"),
        ("POST", "/invocations", ROW, "text/csv", "image/png", 406, "not_acceptable"),
        ("GET", "/invocations", "", None, None, 405, "method_not_allowed"),
        ("GET", "/nope", "", None, None, 404, "not_found"),
        ("POST", "//invocations", ROW, "text/csv", None, 404, "not_found"),  # matched as sent, never an HTML redirect
        ("GET", "/models", "", None, None, 404, "not_found"),  # single-model mode has no /models API
    ],
)
def test_errors_are_json(client, method, path, body, content_type, accept, status, code):
    headers = {"Accept": accept} if accept else {}
    json_error(client.open(path, method=method, data=body, content_type=content_type, headers=headers), status, code)


def test_a_too_large_body_is_refused_by_the_app_too(trained_root):
    app = in_process_app(trained_root, SAGEMAKER_MAX_PAYLOAD_IN_MB="1")
    json_error(
        app.test_client().post("/invocations", data="1," * 600_000, content_type="text/csv"), 413, "payload_too_large"
    )


def test_settings_are_handed_to_workers_as_they_were_resolved(tmp_path):
    settings = serving_settings(
        {
            "SAGEMAKER_BASE_DIR": str(tmp_path),
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "30",
        }
    )
    runtime = Runtime(
        code_dir=tmp_path / "code", compile_status=tmp_path / "compile.json", metrics_dir=tmp_path / "metrics"
    )
    assert read_handoff(handoff_json(settings, runtime)) == (settings, runtime)
    assert settings.program == "inference.py" and settings.log_level == "WARNING"


def test_an_unloadable_model_keeps_the_worker_up_and_ping_says_why(tmp_path, trained_root):
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    (root / "model" / "model.txt").write_text("tree\nversion=v4\n")  # cut short after the workers' check
    client = in_process_app(root).test_client()
    body = json_error(client.get("/ping"), 503, "model_unavailable")
    assert "could not be loaded" in body["message"] and "incomplete" in body["message"]
    assert (
        "incomplete"
        in json_error(client.post("/invocations", data=ROW, content_type="text/csv"), 503, "model_unavailable")[
            "message"
        ]
    )


def test_multi_model_api_in_process(tmp_path, trained_root, booster):
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "models" / "m" / "model")
    client = in_process_app(root, SAGEMAKER_MULTI_MODEL="true").test_client()
    assert client.get("/ping").status_code == 200
    url = str(root / "models" / "m" / "model")
    assert client.post("/models", json={"model_name": "m", "url": url}).get_json() == {
        "status": "loaded",
        "modelName": "m",
        "modelUrl": url,
    }
    json_error(client.post("/models", json={"model_name": "m", "url": url}), 409, "conflict")
    json_error(client.post("/models", data="{", content_type="application/json"), 400, "bad_request")
    (listed,) = client.get("/models").get_json()["models"]  # SageMaker's keys, and ours beside them
    assert (listed["modelName"], listed["modelUrl"]) == ("m", url) and listed["memoryBytes"] > 0
    response = client.post("/models/m/invoke", data=ROW, content_type="text/csv")
    assert float(response.data) == pytest.approx(booster.predict(_row())[0], abs=1e-9)
    response = client.post(
        "/invocations", data=ROW, content_type="text/csv", headers={"X-Amzn-SageMaker-Target-Model": "m"}
    )
    assert response.status_code == 200
    assert client.get("/stats").get_json()["models_loaded"] == 1  # one namespace: the TargetModel "m" is the loaded "m"
    assert client.delete("/models/m").status_code == 200
    json_error(client.post("/models/m/invoke", data=ROW, content_type="text/csv"), 404, "model_not_found")


# ------------------------------------------- the direct /invocations path answers exactly as Flask's route


def _both_paths(app):
    """(the app as served, the same app with every request through Flask's route): DirectInvocations
    sits inside CountedApp; the second WSGI callable skips only it."""
    from lightgbm_container.serving.app import CountedApp, DirectInvocations

    counted = app.wsgi_app
    assert isinstance(counted, CountedApp) and isinstance(counted.app, DirectInvocations)
    return counted, CountedApp(counted.app.app, counted.static_routes)


@pytest.mark.parametrize(
    "body, headers",
    [
        (ROW, {"Content-Type": "text/csv"}),
        (ROW, {"Content-Type": "text/csv", "Accept": "application/json"}),
        (ROW + "\n" + ROW, {"Content-Type": "text/csv; charset=utf-8", "Accept": "application/jsonlines"}),
        ('{"instances": [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]]}', {"Content-Type": "application/json"}),
        (ROW, {"Content-Type": "text/csv", "Accept": "application/x-npy"}),
        (ROW, {"Content-Type": "text/csv", "Accept": "text/html"}),  # 406
        (ROW, {"Content-Type": "image/png"}),  # 415
        ("59,2,abc", {"Content-Type": "text/csv"}),  # 400 naming the line and column
        ("", {"Content-Type": "text/csv"}),  # empty body
        (ROW, {}),  # no Content-Type
        (ROW, {"Content-Type": "text/csv", "X-Amzn-SageMaker-Custom-Attributes": "output=predicted_value"}),
    ],
)
@pytest.mark.parametrize("style", ["standard", "builtin-algorithm"])
def test_the_direct_path_answers_byte_for_byte_as_flasks_route(trained_root, body, headers, style, caplog):
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    caplog.set_level("INFO")
    app = in_process_app(trained_root, LIGHTGBM_RESPONSE_STYLE=style)
    direct, through_flask = _both_paths(app)
    answers = []
    for wsgi in (direct, through_flask):
        environ = EnvironBuilder(
            path="/invocations",
            method="POST",
            data=body.encode(),
            headers={**headers, "X-Amzn-SageMaker-Inference-Id": "req-1"},
        ).get_environ()
        if "Content-Type" not in headers:
            environ.pop("CONTENT_TYPE", None)
        caplog.clear()
        answer, status, response_headers = run_wsgi_app(wsgi, environ)
        answers.append((status, list(response_headers), b"".join(answer), [r.getMessage() for r in caplog.records]))
        getattr(answer, "close", lambda: None)()
    assert answers[0] == answers[1]
    if not answers[0][0].startswith("200"):
        assert answers[0][3], "an error is logged on both paths"


def test_requests_the_direct_path_leaves_to_flask(trained_root):
    """Other routes, a body without a Content-Length (chunked), and a body above the limit: Flask's."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    from lightgbm_container.serving.app import DirectInvocations

    app = in_process_app(trained_root)
    direct = app.wsgi_app.app
    seen = []
    flask_app = direct.app
    direct.app = lambda environ, start_response: seen.append(environ["PATH_INFO"]) or flask_app(environ, start_response)
    assert isinstance(direct, DirectInvocations)
    too_large = EnvironBuilder(path="/invocations", method="POST", data=b"1" * (7 * 1024 * 1024))
    chunked = EnvironBuilder(path="/invocations", method="POST", data=ROW.encode(), content_type="text/csv")
    chunked_environ = chunked.get_environ()
    chunked_environ.pop("CONTENT_LENGTH")
    chunked_environ["wsgi.input_terminated"] = True
    for environ in (EnvironBuilder(path="/ping").get_environ(), too_large.get_environ(), chunked_environ):
        answer, status, _ = run_wsgi_app(app.wsgi_app, environ)
        b"".join(answer)
    assert seen == ["/ping", "/invocations", "/invocations"]
    assert status.startswith("200")  # the chunked body, read by Werkzeug to its end
