"""The real `serve` (nginx -> gunicorn, 2 workers) on a loopback port, exercised over HTTP."""

import io
import json
import os
import signal
import socket
import time

import lightgbm as lgb
import numpy as np
import pytest
import requests

from support import DATA, Server, failed_start, json_error

VALIDATION_CSV = "input/data/validation/diabetes_validation.csv"


def _features(root, rows=None):
    data = np.loadtxt(root / VALIDATION_CSV, delimiter=",")[:, :-1]
    return data if rows is None else np.resize(data, (rows, data.shape[1]))


def _csv(rows):
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)


def _booster(root):
    return lgb.Booster(model_file=str(root / "model" / "model.txt"))


def test_ping_is_empty_200(server):
    response = requests.get(server.url + "/ping", timeout=2)
    assert response.status_code == 200 and response.content == b""


def test_csv_predictions_equal_lightgbm(server, trained_root):
    features = _features(trained_root)
    response = server.post(_csv(features))
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv"
    got = np.array(response.text.splitlines(), dtype=float)
    np.testing.assert_allclose(got, _booster(trained_root).predict(features), rtol=0, atol=1e-9)


@pytest.mark.parametrize("rows", [1, 2, 10_000])
def test_one_output_line_per_input_record_in_order(server, trained_root, rows):
    features = _features(trained_root, rows)
    for body in (_csv(features), _csv(features) + "\n"):
        response = server.post(body, "text/csv; charset=utf-8")
        assert response.status_code == 200, response.text
        lines = response.text.splitlines()
        assert len(lines) == rows
        np.testing.assert_allclose(np.array(lines, dtype=float), _booster(trained_root).predict(features), atol=1e-9)


def test_json_shapes_and_answers(server, trained_root):
    features = _features(trained_root)[:3]
    expected = _booster(trained_root).predict(features)
    names = [f"Column_{i}" for i in range(features.shape[1])]
    records = [dict(zip(reversed(names), reversed(row.tolist()))) for row in features]  # any key order
    for document in (features.tolist(), {"instances": features.tolist()}, {"instances": records}, records):
        response = server.post(json.dumps(document), "application/json")
        assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
        np.testing.assert_allclose(response.json()["predictions"], expected, atol=1e-9)


def test_jsonlines_and_npy(server, trained_root):
    features = _features(trained_root)[:4]
    expected = _booster(trained_root).predict(features)
    body = "\n".join(json.dumps(row) for row in features.tolist())
    response = server.post(body, "application/jsonlines")
    assert response.headers["Content-Type"] == "application/jsonlines"
    np.testing.assert_allclose([json.loads(line) for line in response.text.splitlines()], expected, atol=1e-9)
    buffer = io.BytesIO()
    np.save(buffer, features)
    response = server.post(buffer.getvalue(), "application/x-npy")
    assert response.headers["Content-Type"] == "application/x-npy"
    np.testing.assert_allclose(np.load(io.BytesIO(response.content)), expected, atol=1e-9)


def test_accept_chooses_the_response_type(server, trained_root):
    row = _csv(_features(trained_root)[:1])
    assert server.post(row, accept="application/json").json()["predictions"]
    assert server.post(row, accept="*/*").headers["Content-Type"] == "text/csv"
    assert server.post(row, accept="application/jsonlines").headers["Content-Type"] == "application/jsonlines"
    assert server.post(row, "application/octet-stream").headers["Content-Type"] == "text/csv"


def test_missing_values_are_accepted(server):
    response = server.post("59,2,,101,nan,93.2,38,4,4.8598,87")
    assert response.status_code == 200 and len(response.text.splitlines()) == 1
    response = server.post(json.dumps([[59, 2, None, 101, None, 93.2, 38, 4, 4.8598, 87]]), "application/json")
    assert response.status_code == 200


def test_bad_requests_get_json_errors_that_say_what_to_fix(server):
    json_error(
        server.post("1,2,3,4,5,6,7,8,9,10,11"),
        400,
        "bad_request",
        "expected 10 features, got 11 — did you include the label?",
    )
    json_error(
        server.post("1,2,3,4,5,6,7,8,9,10\n1,2,3,x,5,6,7,8,9,10"),
        400,
        "bad_request",
        "line 2, column 4: 'x' is not a number",
    )
    json_error(server.post("1,2,3,4,5,6,7,8,9,10\n1,2"), 400, "bad_request", "line 2 has 2 fields")
    json_error(server.post(""), 400, "empty_body", "empty")
    json_error(server.post("[[1,2", "application/json"), 400, "bad_request", "not valid JSON")
    json_error(
        server.post('{"instances": [{"age": 1}]}', "application/json"), 400, "bad_request", "unknown feature(s) 'age'"
    )
    json_error(server.post("1,2", "image/png"), 415, "unsupported_media_type", "image/png", "text/csv")
    json_error(server.post("1,2", accept="image/png"), 406, "not_acceptable", "image/png")
    json_error(requests.get(server.url + "/nope", timeout=5), 404, "not_found", "/nope")
    json_error(requests.get(server.url + "/invocations", timeout=5), 405, "method_not_allowed")


def test_too_large_body_is_refused_by_nginx_as_json(server):
    body = ("1," * 9 + "1\n") * (7 * 1024 * 1024 // 20)
    json_error(server.post(body), 413, "payload_too_large", "6 MB")


def test_answers_sent_before_the_body_is_read_arrive_whole(server):
    """The workers close a connection at once only when nothing is left unread (serving/sync_worker.py):
    an answer given without reading a 2 MB body still reaches the client whole, every time."""
    body = b"1," * (1024 * 1024)
    with requests.Session() as session:
        for _ in range(20):
            response = session.post(server.url + "/no-such-route", data=body, headers={"Content-Type": "text/csv"})
            json_error(response, 404, "not_found")
            predicted = session.post(
                server.url + "/invocations", data=b"1,2,3,4,5,6,7,8,9,10", headers={"Content-Type": "text/csv"}
            )
            assert predicted.status_code == 200, predicted.text
    assert "Using worker: lightgbm_container.serving.sync_worker.Worker" in server.logs()


def test_a_run_directory_nginx_could_not_reach_stops_serve_naming_it(trained_root, tmp_path):
    """As root, with TMPDIR inside a private directory, nginx's unprivileged workers could not
    reach serve's run directory (/ping answered 500 forever): serve stops at start and says why."""
    if os.geteuid() != 0:
        pytest.skip("only root's nginx drops to another user")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    logs = failed_start(trained_root, tmp_path, TMPDIR=str(private))
    assert f"{private} is not searchable by others" in logs and "point TMPDIR at" in logs, logs


def test_execution_parameters(server):
    response = requests.get(server.url + "/execution-parameters", timeout=5)
    assert response.json() == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


def test_workers_keep_serving_after_errors(server, trained_root):
    features = _features(trained_root)[:1]
    for _ in range(20):
        server.post("garbage")
    assert server.post(_csv(features)).status_code == 200


def test_bare_model_file_multiclass_and_lightgbm_predictor(tmp_path, start_server):
    """A model trained elsewhere (any file name, no metadata) is served, with positional features."""
    rng = np.random.default_rng(0)
    wine = np.loadtxt(DATA / "wine.csv", delimiter=",", skiprows=1)
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbosity": -1}, lgb.Dataset(wine[:, :-1], wine[:, -1]), 15
    )
    root = tmp_path / "bare"
    (root / "model").mkdir(parents=True)
    booster.save_model(str(root / "model" / "lightgbm-wine-model.txt"))
    server = start_server(root, LIGHTGBM_PREDICTOR="lightgbm")
    rows = wine[rng.choice(len(wine), 5), :-1]
    response = server.post(_csv(rows))
    got = np.array([line.split(",") for line in response.text.splitlines()], dtype=float)
    np.testing.assert_allclose(got, booster.predict(rows), atol=1e-9)
    assert server.post(_csv(rows), accept="application/json").json()["predictions"][0].__len__() == 3
    assert "predictor=lightgbm" in server.logs()


def test_startup_logs_state_port_workers_threads_and_model(server):
    logs = server.logs()
    assert f"127.0.0.1:{server.port}: 2 gunicorn sync workers x 1 LightGBM thread(s)" in logs
    assert "features=10" in logs and "objective=regression" in logs
    assert 'POST /invocations HTTP/1.1" status=200' in logs  # nginx's one line per request


def test_missing_model_stops_serve_with_a_reason(tmp_path):
    empty = tmp_path / "empty"
    (empty / "model").mkdir(parents=True)
    server = Server(empty, tmp_path / "serve.log")
    assert server.process.wait(timeout=30) == 1
    assert "no LightGBM text model" in server.logs()
    server.stop()


def test_sigterm_drains_an_in_flight_request(tmp_path, trained_root, start_server):
    server = start_server(trained_root)
    body = _csv(_features(trained_root, 2000)).encode()
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    client = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    client.sendall(head + body[: len(body) // 2])  # the request is now in flight
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert server.process.poll() is None, "serve quit with a request in flight"
    client.sendall(body[len(body) // 2 :])
    response = b""
    while chunk := client.recv(65536):
        response += chunk
    client.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:300]
    assert response.split(b"\r\n\r\n", 1)[1].count(b"\n") == 2000
    assert server.process.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/ping", timeout=2)
