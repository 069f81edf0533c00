"""The observability parts in-process: log formats, wrapped lines, request ids, batched metrics, /metrics and /stats."""

import io
import json
import logging
import shutil
import sys
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lightgbm_container.observability import logs, request_ids
from lightgbm_container.observability.batching import Batch
from lightgbm_container.serving.app import content_type_label
from support import PAYLOAD_ROWS, REPO, in_process_app, json_error


def _record(message: str, **extra) -> logging.LogRecord:
    record = logging.LogRecord("lightgbm_container.x", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_use_the_documented_names_and_keep_extras():
    line = json.loads(logs.JsonFormatter().format(_record("hello", request_id="r1", status=400)))
    assert {"time", "level", "logger", "pid", "message"} <= line.keys()
    assert (line["level"], line["logger"], line["message"], line["request_id"], line["status"]) == (
        "INFO",
        "lightgbm_container.x",
        "hello",
        "r1",
        400,
    )


def test_plain_lines_end_with_the_request_id_only_inside_a_request():
    formatter = logs.PlainFormatter()
    assert formatter.format(_record("hello", request_id="r2")).endswith("lightgbm_container.x: hello request_id=r2")
    assert formatter.format(_record("hello")).endswith("lightgbm_container.x: hello")


def test_the_filter_stamps_records_made_while_a_request_is_served():
    stream = io.StringIO()
    logs.configure_logging("INFO", logs.JSON, stream=stream)
    try:
        request_ids.begin("abc")
        logging.getLogger("t").info("inside")
        request_ids.end()
        logging.getLogger("t").info("outside")
    finally:
        logs.configure_logging()
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "abc" and "request_id" not in outside


def test_printed_lines_are_wrapped_and_json_lines_kept():
    kept = b'{"time":"t","level":"INFO","logger":"x","message":"m"}\n'
    assert logs.wrap_line(kept, "gunicorn", "INFO", 1, 0.0) == kept
    nginx = json.loads(
        logs.wrap_line(b"2026/11/22 10:00:00 [error] 12#12: *1 upstream timed out\n", "nginx", "WARNING", 7, 0.0)
    )
    assert (nginx["level"], nginx["logger"], nginx["pid"]) == ("ERROR", "nginx", 7) and "upstream timed out" in nginx[
        "message"
    ]
    odd = json.loads(logs.wrap_line(b"[LightGBM] \xff warning\r\n", "gunicorn", "INFO", 1, 0.0))
    assert odd["message"] == "[LightGBM] \ufffd warning"


def test_content_type_labels_stay_few():
    assert content_type_label("text/csv; charset=utf-8") == "text/csv"
    assert content_type_label("application/x-ndjson") == "application/jsonlines"
    assert content_type_label(None) == "none" and content_type_label("image/png") == "other"
    assert content_type_label("application/octet-stream") == "application/octet-stream"


def test_error_bodies_quote_the_request_id_sent_or_made(trained_root):
    client = in_process_app(trained_root).test_client()
    sent = client.post("/invocations", data="1,2", content_type="text/csv", headers={request_ids.HEADER: "given-1"})
    assert json.loads(sent.data)["request_id"] == "given-1"
    json_error(sent, 400)
    made = json.loads(client.post("/invocations", data="1,2", content_type="text/csv").data)["request_id"]
    assert len(made) == 32 and made != "given-1"


def test_metrics_in_one_process_parse_and_count(trained_root):
    client = in_process_app(trained_root).test_client()

    def count() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        families = {family.name: family for family in text_string_to_metric_families(text)}
        return sum(
            s.value
            for s in families["lightgbm_http_requests"].samples
            if s.name == "lightgbm_http_requests_total"
            and s.labels["route"] == "/invocations"
            and s.labels["status"] == "200"
        )

    before = count()
    for _ in range(3):
        # buffered: the test client then closes the body, as a WSGI server does; its metrics are recorded then
        assert (
            client.post("/invocations", data=PAYLOAD_ROWS[0], content_type="text/csv", buffered=True).status_code == 200
        )
    assert count() - before == 3


def _predict_steps_timed(client) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    samples = (
        families["lightgbm_inference_stage_seconds"].samples if "lightgbm_inference_stage_seconds" in families else []
    )
    return sum(s.value for s in samples if s.name.endswith("_count") and s.labels["stage"] == "predict")


@pytest.mark.parametrize("example, timed", [("toolkit/pandas_inference.py", 1), ("toolkit/transform_only.py", 0)])
def test_user_code_steps_are_timed_unless_one_transform_fn_does_them_all(
    tmp_path, trained_root, example, timed, monkeypatch
):
    # inference.py is imported by its name, once per process, as the toolkit does: forget the last test's.
    monkeypatch.delitem(sys.modules, "inference", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    (root / "model" / "code").mkdir()
    (root / "model" / "code" / "inference.py").write_text((REPO / "examples" / example).read_text())
    client = in_process_app(
        root, SAGEMAKER_PROGRAM="inference.py", SAGEMAKER_SUBMIT_DIRECTORY="/opt/ml/model/code"
    ).test_client()
    before = _predict_steps_timed(client)
    answer = client.post("/invocations", data=PAYLOAD_ROWS[0], content_type="text/csv", buffered=True)
    assert answer.status_code == 200, answer.data
    assert _predict_steps_timed(client) - before == timed


def _twin_metrics():
    """The same counter and histogram twice in one registry: ``direct_*`` and ``batched_*``."""
    registry = CollectorRegistry()
    made = {}
    for way in ("direct", "batched"):
        made[way] = (
            Counter(f"{way}_bytes", "b", ["route"], registry=registry),
            Histogram(f"{way}_seconds", "s", ["route"], buckets=(0.001, 0.01, 0.1, 1.0), registry=registry),
        )
    return registry, made


def test_batched_updates_publish_exactly_what_direct_ones_would():
    """Same samples (buckets' edges included: "less or equal") as prometheus-client's own observe,
    which guards the private fields batching.PendingHistogram adds to against an upgrade."""
    registry, made = _twin_metrics()
    batch = Batch()
    counter = batch.counter(made["batched"][0].labels("/invocations"))
    histogram = batch.histogram(made["batched"][1].labels("/invocations"))
    values = [0.0, 0.0005, 0.001, 0.001000001, 0.01, 0.5, 1.0, 7.5, 1e9, 0.001]
    for round_ in range(2):  # a second publish adds to the first, and nothing is published twice
        for number, observed in enumerate(values):
            made["direct"][0].labels("/invocations").inc(number)
            made["direct"][1].labels("/invocations").observe(observed)
            with batch.lock:  # as the request path adds them up
                counter.inc(number)
                histogram.observe(observed)
        # Nothing of this round shows before it is published.
        assert registry.get_sample_value("batched_seconds_count", {"route": "/invocations"}) == len(values) * round_
        assert batch.publish()
        samples = {}
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    way, name = sample.name.split("_", 1)
                    samples.setdefault(way, {})[name, tuple(sorted(sample.labels.items()))] = sample.value
        assert samples["direct"].keys() == samples["batched"].keys() and len(samples["direct"]) == 8
        for key, direct in samples["direct"].items():  # a sum of the same values, added in another order
            assert samples["batched"][key] == (
                pytest.approx(direct, rel=1e-12) if key[0].endswith("_sum") else direct
            ), key


def test_the_publisher_thread_publishes_without_being_asked():
    registry, made = _twin_metrics()
    batch = Batch(interval=0.05)
    counter = batch.counter(made["batched"][0].labels("/ping"))
    batch.start_publishing()
    with batch.lock:
        counter.inc(3)
    deadline = time.monotonic() + 5
    while registry.get_sample_value("batched_bytes_total", {"route": "/ping"}) != 3.0:
        assert time.monotonic() < deadline, "the publisher thread never published"
        time.sleep(0.01)
