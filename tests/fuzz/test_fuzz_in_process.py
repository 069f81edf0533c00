"""Property-based fuzzing of the Flask app in-process (Flask's test client): many examples, fast.

The same properties run against the real `serve` in test_fuzz_server.py, with fewer examples.
"""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from hostile import METHODS, MODEL_NAMES, PATHS, REQUESTS, TALLY, Answer, assert_json_error, check_invocation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import in_process_app

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
VALID_ROW = np.array([[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87]])


@pytest.fixture(scope="module")
def client(trained_root):
    return in_process_app(trained_root).test_client()


def _answer(response) -> Answer:
    return Answer(response.status_code, response.headers.get("Content-Type", ""), response.get_data())


def _invoke(client, body, content_type, accept) -> Answer:
    headers = {} if accept is None else {"Accept": accept}
    if content_type:
        headers["Content-Type"] = content_type
    return _answer(client.post("/invocations", data=body, headers=headers))


def _interleaved_valid_request(client, booster):
    answer = _invoke(client, ",".join(map(str, VALID_ROW[0])).encode(), "text/csv", None)
    assert answer.status == 200 and float(answer.body) == pytest.approx(booster.predict(VALID_ROW)[0], abs=1e-9)


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_every_generated_request_is_answered_by_the_documented_rules(client, booster, kind):
    examples = {"csv": 1000, "json": 1000, "bytes": 300}.get(kind, 500)

    @settings(FUZZ, max_examples=examples)
    @given(request=REQUESTS[kind])
    def run(request):
        body, content_type, accept = request
        outcome = check_invocation(_invoke(client, body, content_type, accept), body, content_type, accept, booster)
        TALLY.add(f"in-process {kind}", outcome)
        if sum(TALLY.counts.values()) % 5 == 0:
            _interleaved_valid_request(client, booster)

    run()


@FUZZ
@given(method=METHODS, path=PATHS, body=st.binary(max_size=50))
def test_odd_routes_and_methods_answer_json_and_never_5xx(client, method, path, body):
    response = client.open(path, method=method, data=body, headers={"Content-Type": "text/csv"})
    answer = _answer(response)
    if answer.status >= 300 and method != "HEAD":
        assert_json_error(answer, (method, path))
    assert answer.status < 500, (method, path, answer.body[:300])
    TALLY.add("in-process routes", "ok" if answer.status < 300 else "rejected")


# ------------------------------------------------------------------ multi-model


@pytest.fixture(scope="module")
def multi_model_client(trained_root, tmp_path_factory):
    """A multi-model app over a models directory holding good, damaged and escaping models."""
    text = (trained_root / "model" / "model.txt").read_bytes()
    base = tmp_path_factory.mktemp("fuzz-mme")
    models = base / "ml" / "models"
    (models / "good" / "model").mkdir(parents=True)
    (models / "good" / "model" / "model.txt").write_bytes(text)
    (models / "truncated" / "model").mkdir(parents=True)
    (models / "truncated" / "model" / "model.txt").write_bytes(text[: len(text) // 3])
    (base / "outside").mkdir()
    (base / "outside" / "model.txt").write_bytes(text)
    (models / "sneaky").mkdir()
    (models / "sneaky" / "model.txt").symlink_to(base / "outside" / "model.txt")
    (models / "loop").symlink_to(models / "loop")
    (models / "not-a-model").write_text("hello")
    for name, payload in (("truncated.tar.gz", text[:1000]), ("slip.tar.gz", text)):
        with tarfile.open(models / name, "w:gz") as tar:
            info = tarfile.TarInfo("../../evil.txt" if name == "slip.tar.gz" else "model.txt")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return in_process_app(base / "ml", SAGEMAKER_MULTI_MODEL="true", LIGHTGBM_MODEL_CACHE_MB="64").test_client(), models


_ALLOWED = {200, 400, 404, 405, 409, 413, 415, 507}


@FUZZ
@given(
    action=st.sampled_from(["load", "target", "invoke", "describe", "unload", "list"]),
    name=MODEL_NAMES,
    url=st.one_of(MODEL_NAMES, st.sampled_from(["/etc/passwd", "/", "file:///etc", "good/model"])),
    limit=st.one_of(st.none(), st.text(max_size=4), st.integers(-5, 2000).map(str)),
)
def test_multi_model_api_never_fails_or_escapes(multi_model_client, action, name, url, limit):
    client, models = multi_model_client
    row = ",".join(map(str, VALID_ROW[0]))
    quoted = name.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    if action == "load":
        response = client.post(
            "/models", json={"model_name": name, "url": url if url.startswith(("/", "file:")) else str(models / url)}
        )
    elif action == "target":
        try:
            response = client.post(
                "/invocations", data=row, headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Target-Model": name}
            )
        except ValueError:  # a header value werkzeug itself cannot send (newline, NUL): not a request at all
            return
    elif action == "invoke":
        response = client.post(f"/models/{quoted}/invoke", data=row, headers={"Content-Type": "text/csv"})
    elif action == "describe":
        response = client.get(f"/models/{quoted}")
    elif action == "unload":
        response = client.delete(f"/models/{quoted}")
    else:
        response = client.get(
            "/models", query_string={} if limit is None else {"limit": limit, "next_page_token": limit}
        )
    answer = _answer(response)
    assert answer.status in _ALLOWED, (action, name, url, answer.status, answer.body[:300])
    if answer.status != 200:
        assert_json_error(answer, (action, name, url)) if answer.status < 500 else None
    assert not (models.parent.parent / "evil.txt").exists()
    TALLY.add("in-process multi-model", "ok" if answer.status == 200 else "rejected")
