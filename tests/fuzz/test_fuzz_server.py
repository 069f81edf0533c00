"""The fuzz properties of test_fuzz_in_process.py against the real `serve` (nginx + gunicorn, 2 workers).

Fewer examples than in-process (each is a real HTTP round trip through nginx), but every
layer is there: nginx's limits and error pages, gunicorn's parser, both workers.
"""

from __future__ import annotations

import pytest
import requests
from hostile import METHODS, PATHS, REQUESTS, TALLY, Answer, assert_json_error, check_invocation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
VALID_ROW = "59,2,32.1,101,157,93.2,38,4,4.8598,87"


def _answer(response) -> Answer:
    return Answer(response.status_code, response.headers.get("Content-Type", ""), response.content)


def _invoke(server, body, content_type, accept) -> Answer:
    headers = {} if accept is None else {"Accept": accept}
    if content_type:
        headers["Content-Type"] = content_type
    return _answer(requests.post(server.url + "/invocations", data=body, headers=headers, timeout=30))


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_every_generated_request_is_answered_by_the_documented_rules(server, booster, kind):
    @FUZZ
    @given(request=REQUESTS[kind])
    def run(request):
        body, content_type, accept = request
        outcome = check_invocation(_invoke(server, body, content_type, accept), body, content_type, accept, booster)
        TALLY.add(f"real serve {kind}", outcome)
        if sum(TALLY.counts.values()) % 5 == 0:  # the server still answers a valid request correctly
            valid = _invoke(server, VALID_ROW.encode(), "text/csv", None)
            assert (
                valid.status == 200 and check_invocation(valid, VALID_ROW.encode(), "text/csv", None, booster) == "ok"
            )

    run()


@FUZZ
@given(method=METHODS, path=PATHS, body=st.binary(max_size=50))
def test_odd_routes_and_methods_answer_json_and_never_5xx(server, method, path, body):
    response = requests.request(method, server.url + path, data=body, headers={"Content-Type": "text/csv"}, timeout=30)
    answer = _answer(response)
    if answer.status >= 300 and method != "HEAD":
        assert_json_error(answer, (method, path))
    assert answer.status < 500, (method, path, answer.body[:300])
    TALLY.add("real serve routes", "ok" if answer.status < 300 else "rejected")
