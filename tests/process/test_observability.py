"""What operators see of the real `serve` and `train`: /metrics, JSON logs, request ids, metrics.jsonl.

Every figure is checked against what the test itself sent, across both gunicorn workers,
including after a worker is killed and replaced. Workers publish per-request updates every
``PUBLISH_SECONDS`` (observability/batching.py): a check waits, bounded, until they have.
"""

import json
import re
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from lightgbm_container.observability.batching import PUBLISH_SECONDS
from lightgbm_container.observability.metrics import LATENCY_BUCKETS, ROW_BUCKETS
from support import PAYLOAD_ROWS, REPO, json_error, make_root, run_train

ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
INVOCATIONS_OK = {"method": "POST", "route": "/invocations", "status": "200", "content_type": "text/csv"}


def scrape(server) -> dict[str, list]:
    """``GET /metrics`` parsed by prometheus-client's own text parser: family name -> samples."""
    response = requests.get(server.url + "/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain"), response.text[
        :300
    ]
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def scrape_until(server, done, what: str) -> dict[str, list]:
    """Scrape until ``done(families)``: every worker has published (a few publish intervals at most)."""
    deadline = time.monotonic() + 10 * PUBLISH_SECONDS + 5
    while not done(families := scrape(server)):
        assert time.monotonic() < deadline, f"never published: {what}"
        time.sleep(PUBLISH_SECONDS / 5)
    return families


def value(families: dict, sample_name: str, **labels: str) -> float:
    """The sample of that name whose labels include ``labels`` (0 when there is none yet)."""
    family = re.sub(r"_(total|bucket|count|sum)$", "", sample_name)
    found = [s.value for s in families.get(family, []) if s.name == sample_name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, (sample_name, labels, found)
    return found[0] if found else 0.0


def workers_of(server) -> list[psutil.Process]:
    """The gunicorn workers: children of the gunicorn master, which is a child of serve."""
    master = next(p for p in psutil.Process(server.process.pid).children() if "gunicorn" in " ".join(p.cmdline()))
    return master.children()


def test_metrics_count_every_request_across_workers_and_a_replaced_one(trained_root, start_server):
    server = start_server(trained_root)
    before = scrape(server)
    assert value(before, "lightgbm_workers") == 2
    rows = PAYLOAD_ROWS[:3]
    with ThreadPoolExecutor(4) as pool:  # concurrent, so both workers answer some
        answers = list(pool.map(lambda _: server.post("\n".join(rows)), range(40)))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers if a.status_code != 200]
    session = requests.Session()
    for _ in range(5):
        json_error(session.post(server.url + "/invocations", data="1,2\n", headers={"Content-Type": "text/csv"}), 400)
    sent_ok = value(before, "lightgbm_http_requests_total", **INVOCATIONS_OK) + 40

    def all_published(families: dict) -> bool:  # both workers' requests; an over-count would never match
        return (
            value(families, "lightgbm_http_requests_total", **INVOCATIONS_OK) == sent_ok
            and value(families, "lightgbm_http_requests_total", route="/invocations", status="400") == 5
        )

    after = scrape_until(server, all_published, "40 good and 5 bad requests")
    assert value(after, "lightgbm_errors_total", code="bad_request", status="400") == 5
    assert value(after, "lightgbm_inference_rows_count") == 40 and value(after, "lightgbm_inference_rows_sum") == 120
    for stage in ("decode", "predict", "encode"):
        assert value(after, "lightgbm_inference_stage_seconds_count", stage=stage) == 40
    # The documented buckets, cumulative, ending in +Inf with the count.
    buckets = [
        s
        for s in after["lightgbm_http_request_duration_seconds"]
        if s.name.endswith("_bucket") and INVOCATIONS_OK.items() <= s.labels.items()
    ]
    assert [float(s.labels["le"]) for s in buckets] == [*LATENCY_BUCKETS, float("inf")]
    assert buckets[-1].value == value(after, "lightgbm_http_request_duration_seconds_count", **INVOCATIONS_OK) == 40
    assert all(a.value <= b.value for a, b in zip(buckets, buckets[1:]))
    row_buckets = [float(s.labels["le"]) for s in after["lightgbm_inference_rows"] if s.name.endswith("_bucket")]
    assert row_buckets == [*ROW_BUCKETS, float("inf")]
    sent = len("\n".join(rows).encode())
    assert (
        value(after, "lightgbm_http_request_bytes_total", route="/invocations")
        - value(before, "lightgbm_http_request_bytes_total", route="/invocations")
        == 40 * sent + 5 * 4
    )

    # Kill one worker: gunicorn replaces it; nothing it counted is lost, nothing is counted twice.
    victim = workers_of(server)[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and value(scrape(server), "lightgbm_worker_restarts_total") < 1:
        time.sleep(0.1)
    server.wait_healthy()
    for _ in range(10):
        response = session.post(server.url + "/invocations", data="\n".join(rows), headers={"Content-Type": "text/csv"})
        assert response.status_code == 200, response.text
    # Exactly 50: the victim's 40-request share was published before it died, and is neither lost nor doubled.
    final = scrape_until(
        server,
        lambda f: value(f, "lightgbm_http_requests_total", **INVOCATIONS_OK) == sent_ok + 10,
        "exactly the 10 requests after the kill on top of the 40",
    )
    assert value(final, "lightgbm_worker_restarts_total") == 1
    assert value(final, "lightgbm_workers") == 2  # the dead worker's live gauge left the sum
    assert server.stats()["workers"] == 2  # /stats is a view of the same numbers


def test_metrics_and_stats_show_the_same_multi_model_numbers(tmp_path, trained_root, start_server):
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "models" / "m" / "model")
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true")
    body = "\n".join(PAYLOAD_ROWS[:2])
    for _ in range(6):
        response = server.post(body, **{"X-Amzn-SageMaker-Target-Model": "m"})
        assert response.status_code == 200, response.text
    families = scrape_until(
        server,
        lambda f: value(f, "lightgbm_model_cache_hits_total") + value(f, "lightgbm_model_cache_misses_total") >= 6,
        "six model uses",
    )
    stats = server.stats()
    loads = value(families, "lightgbm_model_loads_total")
    assert 1 <= loads <= 2 and loads == stats["loads"]  # one registry load, then at most one copy in the other worker
    assert (
        value(families, "lightgbm_model_cache_hits_total") + value(families, "lightgbm_model_cache_misses_total") >= 6
    )
    assert value(families, "lightgbm_models_loaded") == stats["models_loaded"] == 1
    assert value(families, "lightgbm_model_registry_bytes") == stats["bytes_in_use"] > 0
    assert value(families, "lightgbm_model_load_seconds_count") == loads
    # Per model (a series per model held, gone once it is unloaded), agreeing with GET /models/m
    # (the workers publish them every half second).
    families = scrape_until(server, lambda f: value(f, "lightgbm_model_requests_total", model="m") >= 6, "m's requests")
    described = requests.get(server.url + "/models/m", timeout=5).json()
    assert value(families, "lightgbm_model_worker_copies", model="m") == described["workerCopies"] == loads
    assert value(families, "lightgbm_model_bytes", model="m") == described["memoryBytesAllWorkers"] > 0
    assert value(families, "lightgbm_model_requests_total", model="m") == described["requests"] >= 6
    assert value(families, "lightgbm_model_last_used_timestamp_seconds", model="m") > time.time() - 60
    assert requests.delete(server.url + "/models/m", timeout=5).status_code == 200
    scrape_until(server, lambda f: "lightgbm_model_bytes" not in f or not f["lightgbm_model_bytes"], "m's series gone")


def test_json_logs_parse_line_by_line_and_carry_the_request_id(tmp_path, trained_root, start_server):
    """A mixed run in LOG_FORMAT=json: a multi-model load, good requests, errors (the app's and
    nginx's own), user-visible ids; every line of the log is one JSON object."""
    root = tmp_path / "ml"
    shutil.copytree(trained_root / "model", root / "models" / "m" / "model")
    server = start_server(root, SAGEMAKER_MULTI_MODEL="true", LOG_FORMAT="json", SAGEMAKER_MAX_PAYLOAD_IN_MB="1")
    target = {"X-Amzn-SageMaker-Target-Model": "m"}
    good = server.post("\n".join(PAYLOAD_ROWS[:2]), **target, **{ID_HEADER: "caller-id-1"})
    assert good.status_code == 200, good.text
    bad = server.post("1,2\n", **target, **{ID_HEADER: "caller-id-2"})
    assert json.loads(bad.content)["request_id"] == "caller-id-2"
    generated = json.loads(server.post("x,y\n", **target).content)["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated), generated
    too_large = server.post(b"1," * 600_000, **target, **{ID_HEADER: "caller-id-3"})  # nginx's own 413
    assert too_large.status_code == 413 and json.loads(too_large.content)["request_id"] == "caller-id-3"
    json_error(too_large, 413, "payload_too_large")
    server.stop()

    lines = [line for line in server.logs().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records), records[:3]
    access = {record.get("request_id"): record for record in records if record["logger"] == "nginx.access"}
    assert access["caller-id-1"]["status"] == 200 and access["caller-id-1"]["path"] == "/invocations"
    assert access["caller-id-1"]["target_model"] == "m" and access["caller-id-1"]["method"] == "POST"
    assert isinstance(access["caller-id-1"]["latency"], (int, float))
    assert access["caller-id-2"]["status"] == 400 and access[generated]["status"] == 400
    assert access["caller-id-3"]["status"] == 413
    app_errors = [r for r in records if r.get("request_id") == "caller-id-2" and r["logger"] != "nginx.access"]
    assert app_errors and app_errors[0]["status"] == 400 and app_errors[0]["path"] == "/invocations", app_errors
    assert any(
        r["logger"].startswith("lightgbm_container.multi_model") and "model loaded: m" in r["message"] for r in records
    )
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records)
    assert any(r["logger"] == "serve" for r in records)


def test_plain_logs_and_ids_round_trip(trained_root, start_server):
    server = start_server(trained_root)
    response = server.post("1,2\n", **{ID_HEADER: "plain-id-7"})
    assert json.loads(response.content)["request_id"] == "plain-id-7"

    def access_line(line: str) -> bool:  # nginx's, written once the response is sent
        return line.startswith('127.0.0.1 "POST /invocations') and "status=400" in line

    def app_line(line: str) -> bool:  # the worker's, written while the request is served
        return " INFO [" in line and line.endswith("request_id=plain-id-7")

    # The two processes write independently: wait until both lines are there (or time runs out).
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in server.logs().splitlines() if "plain-id-7" in line]
        if (any(map(access_line, lines)) and any(map(app_line, lines))) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert any(map(access_line, lines)), lines
    assert any(map(app_line, lines)), lines


def readme_metric_regexes() -> dict[str, str]:
    """The ``metric_definitions`` the README offers, by name."""
    text = (REPO / "README.md").read_text()
    return dict(re.findall(r'\{"Name": "([^"]+)", "Regex": r"([^"]+)"\}', text))


def test_training_writes_metrics_jsonl_and_json_log_lines(tmp_path):
    regexes = readme_metric_regexes()
    assert {"train:rmse", "validation:rmse"} <= regexes.keys(), regexes
    root = make_root(tmp_path, {"num_boost_round": "7", "learning_rate": "0.1", "metric": "rmse"})
    result = run_train(root, LOG_FORMAT="json")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    rounds = [r["message"] for r in records if r["logger"] == "metrics" and r["message"].startswith("[")]
    assert len(rounds) == 7, rounds
    jsonl = [json.loads(line) for line in (root / "output" / "data" / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in jsonl] == list(range(1, 8))
    # SageMaker applies the README's regexes to the raw lines: they find each round's values, JSON or not.
    for name in ("train:rmse", "validation:rmse"):
        found = [float(m.group(1)) for line in lines if (m := re.search(regexes[name], line))]
        assert found == pytest.approx([r[name.replace(":", "-")] for r in jsonl], rel=1e-5), (name, found)
    plain = run_train(make_root(tmp_path / "plain", {"num_boost_round": "3", "metric": "rmse"}))
    assert plain.returncode == 0, plain.stdout + plain.stderr
    found = [m.group(1) for line in plain.stdout.splitlines() if (m := re.search(regexes["validation:rmse"], line))]
    assert len(found) == 3 and re.search(r"^\[3\] train-rmse=", plain.stdout, re.M), plain.stdout
