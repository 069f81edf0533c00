"""Hostile and broken input against the real `serve` (issue 7): one regression per defect found.

Each of these requests used to get a wrong 200, an HTML page, a 500 or a dead worker.
The invariant checked everywhere: a refusal is a 4xx/5xx with a JSON body that has
``error`` and ``message``, and the server keeps answering correctly afterwards.
"""

import io
import shutil
import tarfile

import lightgbm as lgb
import numpy as np
import orjson
import pytest
import requests

from support import json_error, raw_http

ROW = "59,2,32.1,101,157,93.2,38,4,4.8598,87"
TARGET = "X-Amzn-SageMaker-Target-Model"


def _still_correct(server, trained_root):
    booster = lgb.Booster(model_file=str(trained_root / "model" / "model.txt"))
    response = server.post(ROW)
    assert response.status_code == 200
    np.testing.assert_allclose(
        float(response.text), booster.predict(np.array([[float(v) for v in ROW.split(",")]]))[0], atol=1e-9
    )


# ------------------------------------------------------------------ 1. CSV: the same rule at every size


@pytest.mark.parametrize("rows", [10, 400, 20_000])  # 400 rows is ~16 KB: the size where pandas' parser took over
@pytest.mark.parametrize("bad", ["59,2,32.1", "59,2,32.1,101,157,93.2,38,4,4.8598,87,1", ""])
def test_a_csv_row_with_the_wrong_number_of_fields_is_refused_at_every_size(server, trained_root, rows, bad):
    lines = [ROW] * rows
    lines[rows // 2] = bad
    json_error(server.post("\n".join(lines)), 400, None, f"line {rows // 2 + 1} ")
    _still_correct(server, trained_root)


def test_an_empty_field_is_still_a_missing_value_in_large_bodies(server):
    row = "59,2,,101,157,93.2,38,4,4.8598,87"
    response = server.post("\n".join([row] * 2000))
    assert response.status_code == 200 and len(response.text.splitlines()) == 2000


# ------------------------------------------------------------------ 2. JSON values must be numbers


@pytest.mark.parametrize("value", ['"1.5"', "true", "false", '"abc"'])
def test_json_and_jsonlines_refuse_strings_and_booleans(server, value):
    row = f"[{value}, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]"
    for body, content_type in (
        (f"[{row}]", "application/json"),
        (f'{{"instances": [{row}]}}', "application/json"),
        (f"[{ROW}]\n{row}", "application/jsonlines"),
    ):
        json_error(server.post(body, content_type), 400, None, "is not a number")


# ------------------------------------------------------------------ 3. NPY: numbers only, at least one row


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "array, fragment",
    [
        (np.array([["a"] * 10]), "expected an array of numbers"),
        (np.array([[b"a"] * 10]), "expected an array of numbers"),
        (np.array([["2020-01-01"] * 10], dtype="datetime64[D]"), "expected an array of numbers"),
        (np.array([[1] * 10], dtype="timedelta64[s]"), "expected an array of numbers"),
        (np.zeros((0, 10)), "no rows"),
    ],
)
def test_npy_refuses_non_numeric_dtypes_and_empty_arrays(server, array, fragment):
    json_error(server.post(_npy(array), "application/x-npy"), 400, None, fragment)


@pytest.mark.parametrize("content_type", ["application/x-npy", "application/octet-stream"])
def test_npy_with_a_format_version_numpy_does_not_know_is_refused_naming_it(server, trained_root, content_type):
    """Bytes 6 and 7 of the magic are the format version; numpy knows 1.0, 2.0 and 3.0. A 9.9
    header used to be read as 2.0's and answered 200."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([[float(v) for v in ROW.split(",")]]), version=(2, 0))
    valid = buffer.getvalue()
    assert valid[6:8] == b"\x02\x00" and server.post(valid, content_type).status_code == 200
    body = json_error(server.post(valid[:6] + b"\x09\x09" + valid[8:], content_type), 400, "bad_request", "version 9.9")
    assert body["version"] == "9.9"
    _still_correct(server, trained_root)


# ------------------------------------------------------------------ 4. cheap facts checked before allocating


def test_records_with_hundreds_of_thousands_of_unknown_keys_are_a_400(server, trained_root):
    body = orjson.dumps([{f"k{i}": 1.0} for i in range(300_000)])
    json_error(server.post(body, "application/json"), 400, None, "unknown feature(s) 'k0'", "299990 more")
    _still_correct(server, trained_root)


def test_records_that_would_expand_beyond_the_payload_are_a_413(server):
    body = b"[" + b",".join([b"{}"] * 1_000_000) + b"]"
    json_error(server.post(body, "application/json"), 413, None, "1000000 records x 10 features")


def test_npy_header_declaring_a_huge_shape_is_a_400(server, trained_root):
    body = _npy(np.zeros((2, 10))).replace(b"'shape': (2, 10), ", b"'shape': (10000000000, 10), ")
    json_error(server.post(body, "application/x-npy"), 400, None, "declares shape (10000000000, 10)")
    _still_correct(server, trained_root)


def test_a_misspelt_feature_name_is_answered_with_the_name_it_resembles(server):
    json_error(server.post('{"Colum_1": 1}', "application/json"), 400, None, "'Colum_1' (did you mean 'Column_1'?)")


# ------------------------------------------------------------------ 5. nginx's and gunicorn's own answers are JSON too


def _request(method=b"POST", path=b"/invocations", headers=b"", body=ROW.encode(), version=b"HTTP/1.1"):
    return (
        method
        + b" "
        + path
        + b" "
        + version
        + b"\r\nHost: x\r\nConnection: close\r\n"
        + headers
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (_request(method=b"TRACE"), 405, "method_not_allowed"),  # nginx
        (_request(path=b"/invocations?" + b"a" * 9000), 414, "uri_too_long"),  # nginx
        (_request(headers=b"X-Big: " + b"a" * 9000 + b"\r\n"), 431, "request_header_fields_too_large"),  # nginx (494)
        (
            _request(headers=b"".join(b"X-H%d: " % i + b"a" * 4000 + b"\r\n" for i in range(10))),
            431,
            "request_header_fields_too_large",
        ),
        (_request(version=b"HTTP/2.0"), 505, "http_version_not_supported"),  # nginx
        (
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
            501,
            "not_implemented",
        ),
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),  # nginx
        (b"POST /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 400, "bad_request"),
        (
            _request(headers=b"Content-Type: text/csv\r\nContent-Type: text/csv\r\n"),
            400,
            "bad_request",
        ),  # gunicorn (RFC 9110 5.3)
        (_request(headers=b"X-A: a\x01b\r\n"), 400, "bad_request"),  # gunicorn: control character in a value
    ],
)
def test_the_http_front_answers_every_refusal_in_json(server, trained_root, request_bytes, status, code):
    json_error(raw_http(server.port, request_bytes), status, code)
    _still_correct(server, trained_root)


@pytest.mark.parametrize(
    "request_bytes",
    [
        _request(path=b"/invocations?" + b"a" * 5000),  # longer than gunicorn's default request line, within nginx's
        _request(headers=b"".join(b"X-H%d: 1\r\n" % i for i in range(150))),  # more than gunicorn's default 100 fields
        _request(headers=b"X-Big: " + b"a" * 7000 + b"\r\n"),
    ],
)
def test_requests_nginx_accepts_gunicorn_accepts_too(server, request_bytes):
    response = raw_http(server.port, request_bytes)
    assert response.status_code == 200, response.content[:300]


# ------------------------------------------------------------------ 6 and 7. multi-model: confined, and never a crash


@pytest.fixture
def broken_models(tmp_path, trained_root):
    """A models directory with every kind of model that must be refused, and one good model."""
    model_text = (trained_root / "model" / "model.txt").read_bytes()
    root = tmp_path / "ml"
    models = root / "models"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.txt").write_bytes(model_text)
    (models / "good" / "model").mkdir(parents=True)
    (models / "good" / "model" / "model.txt").write_bytes(model_text)
    (models / "sneaky" / "model").mkdir(parents=True)
    (models / "sneaky" / "model" / "model.txt").symlink_to(outside / "model.txt")
    (models / "loop").symlink_to(models / "loop")
    (models / "elsewhere").mkdir()
    (models / "elsewhere" / "model").symlink_to(outside)  # a model entry linking to a directory outside
    (models / "truncated" / "model").mkdir(parents=True)
    (models / "truncated" / "model" / "model.txt").write_bytes(model_text[: len(model_text) // 3])
    with tarfile.open(models / "truncated.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("model.txt")
        cut = model_text[: len(model_text) // 2]
        info.size = len(cut)
        tar.addfile(info, io.BytesIO(cut))
    return root, outside


def _worker_boots(server):
    return server.logs().count("Booting worker")


def test_multi_model_refuses_models_outside_the_root_and_damaged_models_without_losing_a_worker(
    broken_models, start_server
):
    root, outside = broken_models
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true")
    boots = _worker_boots(server)
    headers = {"Content-Type": "text/csv"}
    cases = [
        (
            requests.post(server.url + "/models", json={"model_name": "x", "url": str(outside)}, timeout=10),
            400,
            "outside the models directory",
        ),
        (
            requests.post(
                server.url + "/models", json={"model_name": "y", "url": str(root / "models" / "sneaky")}, timeout=10
            ),
            400,
            "points outside the models directory",
        ),
        (
            requests.post(server.url + "/invocations", data=ROW, headers={**headers, TARGET: "sneaky"}, timeout=10),
            400,
            "points outside the models directory",
        ),
        (
            requests.post(server.url + "/invocations", data=ROW, headers={**headers, TARGET: "loop"}, timeout=10),
            400,
            "cannot be resolved",
        ),
        (
            requests.post(server.url + "/invocations", data=ROW, headers={**headers, TARGET: "elsewhere"}, timeout=10),
            400,
            "points outside the models directory",
        ),
    ]
    for _ in range(2):  # both workers, whichever answers
        cases += [
            (
                requests.post(
                    server.url + "/invocations", data=ROW, headers={**headers, TARGET: "truncated"}, timeout=10
                ),
                400,
                "incomplete",
            ),
            (
                requests.post(
                    server.url + "/invocations", data=ROW, headers={**headers, TARGET: "truncated.tar.gz"}, timeout=10
                ),
                400,
                "incomplete",
            ),
        ]
    for response, status, fragment in cases:
        json_error(response, status, None, fragment)
    good = requests.post(server.url + "/invocations", data=ROW, headers={**headers, TARGET: "good"}, timeout=10)
    assert good.status_code == 200
    assert _worker_boots(server) == boots, f"a worker died and was replaced:\n{server.logs()[-4000:]}"
    assert "SIGSEGV" not in server.logs() and "SIGABRT" not in server.logs()


def test_single_model_serve_refuses_a_damaged_model_at_start(tmp_path, trained_root):
    from support import Server

    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    text = (root / "model" / "model.txt").read_bytes()
    (root / "model" / "model.txt").write_bytes(text[: len(text) // 2])
    server = Server(root, tmp_path / "serve.log")
    assert server.process.wait(timeout=30) == 1
    assert "is damaged" in server.logs() or "is incomplete" in server.logs()
    server.stop()
