"""The real `serve` in multi-model mode (SAGEMAKER_MULTI_MODEL=true), 2 workers, over HTTP.

What needs real processes: /ping through nginx, models loaded through one worker served by
all, a load that holds the registry lock while other models answer, hot models compiled in
the background. The store's API, confinement and budget are tested in-process:
tests/unit/test_multi_model_store.py.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pytest
import requests

from support import csv_body, model_layout, tar_archive

TARGET = "X-Amzn-SageMaker-Target-Model"


def _predict(server, rows, target=None, path="/invocations"):
    headers = {"Content-Type": "text/csv"}
    if target is not None:
        headers[TARGET] = target
    return requests.post(server.url + path, data=csv_body(rows), headers=headers, timeout=30)


def _values(response):
    assert response.status_code == 200, response.text
    return np.array(response.text.splitlines(), dtype=float)


@pytest.fixture
def mme(tmp_path, start_server, model_files):
    paths, rows = model_files
    root = tmp_path / "ml"
    (root / "models").mkdir(parents=True)

    def start(**env):
        return start_server(root, SAGEMAKER_MULTI_MODEL="true", **env)

    return root, paths, rows, start


def test_ping_is_healthy_without_models(mme):
    root, _, _, start = mme
    server = start()
    assert requests.get(server.url + "/ping", timeout=2).status_code == 200
    assert requests.get(server.url + "/models", timeout=5).json() == {"models": []}


def test_lazy_target_model_archive_and_directory(mme):
    root, paths, rows, start = mme
    tar_archive(root, "arch.tar.gz", [("model.txt", paths["small"].read_bytes(), "file")])
    model_layout(root, "dir", paths["other"])
    server = start()
    expected_small = lgb.Booster(model_file=str(paths["small"])).predict(rows)
    expected_other = lgb.Booster(model_file=str(paths["other"])).predict(rows)
    for _ in range(4):  # cold then hot, on both workers
        np.testing.assert_allclose(_values(_predict(server, rows, target="arch.tar.gz")), expected_small, atol=1e-9)
        np.testing.assert_allclose(_values(_predict(server, rows, target="dir")), expected_other, atol=1e-9)
    missing = _predict(server, rows, target="nope.tar.gz")
    assert missing.status_code == 404 and "'nope.tar.gz'" in missing.json()["message"]
    no_header = _predict(server, rows)
    assert no_header.status_code == 400 and TARGET in no_header.json()["message"]
    listed = {m["modelName"] for m in requests.get(server.url + "/models", timeout=5).json()["models"]}
    assert listed == {"arch.tar.gz", "dir"}
    server.wait_for_log('target_model="arch.tar.gz"')  # nginx's access line


def test_cross_worker_consistency_under_concurrency(mme):
    root, paths, rows, start = mme
    url = str(model_layout(root, "shared", paths["small"]))
    model_layout(root, "lazy", paths["other"])
    server = start()
    expected = lgb.Booster(model_file=str(paths["small"])).predict(rows)

    assert (
        requests.post(server.url + "/models", json={"model_name": "shared", "url": url}, timeout=30).status_code == 200
    )
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _predict(server, rows, path="/models/shared/invoke"), range(48)))
        listings = list(pool.map(lambda _: requests.get(server.url + "/models", timeout=10).json(), range(16)))
        lazy = list(pool.map(lambda _: _predict(server, rows, target="lazy"), range(16)))
    for answer in answers:
        np.testing.assert_allclose(_values(answer), expected, atol=1e-9)
    assert all(answer.status_code == 200 for answer in lazy)
    # Every worker lists the same models (live figures such as requests move between listings).
    listed = [[(m["modelName"], m["modelUrl"]) for m in listing["models"]] for listing in listings]
    assert all(names == listed[0] for names in listed) and listed[0]
    stats = requests.get(server.url + "/stats", timeout=5).json()
    assert stats["workers"] == 2
    # 'shared' and 'lazy' each loaded at most once per worker, whatever the request count.
    assert stats["loads"] <= 4, stats

    assert requests.delete(server.url + "/models/shared", timeout=5).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        after = list(pool.map(lambda _: _predict(server, rows, path="/models/shared/invoke"), range(16)))
    assert all(answer.status_code == 404 for answer in after)


def test_a_slow_load_does_not_hold_up_loaded_models(mme):
    """One worker: while a load waits (we hold the registry lock, as a slow load would), a loaded model still answers."""
    import fcntl
    import re
    import threading

    root, paths, rows, start = mme
    model_layout(root, "loaded", paths["small"])
    model_layout(root, "slow", paths["other"])
    server = start(SAGEMAKER_MODEL_SERVER_WORKERS="1")
    assert "1 gunicorn sync (4 threads) workers" in server.logs()
    assert _predict(server, rows, target="loaded").status_code == 200
    state_dir = re.search(r"shared state in (\S+)", server.logs()).group(1)
    with open(f"{state_dir}/registry.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        slow = {}
        waiting = threading.Thread(target=lambda: slow.update(response=_predict(server, rows, target="slow")))
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive(), "the load should be waiting for the registry lock"
        started = time.monotonic()
        for _ in range(10):
            assert _predict(server, rows, target="loaded").status_code == 200
        assert time.monotonic() - started < 5
        fcntl.flock(lock, fcntl.LOCK_UN)
    waiting.join(timeout=30)
    assert slow["response"].status_code == 200


def _wait_stats(server, ready, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = requests.get(server.url + "/stats", timeout=5).json()
        if ready(stats):
            return stats
        time.sleep(0.2)
    raise AssertionError(f"/stats never got there: {stats}\n{server.logs()[-4000:]}")


def test_hot_models_are_compiled_once_shared_and_switch_again_after_eviction(mme, model_files):
    """A model answered HOT_AFTER_REQUESTS times in a worker is compiled in the background; every
    answer before, during and after the switch equals LightGBM's; after an eviction the reload
    switches to the object already compiled, with no second compile."""
    from lightgbm_container.multi_model.hot_compile import HOT_AFTER_REQUESTS

    root, paths, rows, start = mme
    expected = lgb.Booster(model_file=str(paths["small"])).predict(rows)
    for name in "abcd":
        model_layout(root, name, paths["small"])
    server = start(LIGHTGBM_MODEL_CACHE_MB="1", LIGHTGBM_COMPILE_CACHE=str(root.parent / "cache"))

    def answer_right(_):
        np.testing.assert_allclose(_values(_predict(server, rows, target="a")), expected, rtol=1e-9, atol=1e-9)

    with ThreadPoolExecutor(2) as pool:  # two connections: both workers get their share
        list(pool.map(answer_right, range(3 * HOT_AFTER_REQUESTS)))
    stats = _wait_stats(server, lambda s: s["compiled_models"] >= 1)
    assert stats["compiles_started"] == 1, stats  # one job, whichever worker got hot first
    assert "model a is hot" in server.logs()
    # quick object first, then the optimised one: every compiled copy ends on the job's last object
    stats = _wait_stats(server, lambda s: 1 <= s["final_compiled_models"] == s["compiled_models"])
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(answer_right, range(50)))
    # A compiled copy's trees are measured too, and count in the budget's registry.
    time.sleep(1.0)  # the workers publish their copies every half second
    described = requests.get(server.url + "/models/a", timeout=5).json()
    assert described["compiledCopies"] == stats["compiled_models"]
    assert described["memoryBytes"] > paths["small"].stat().st_size * 1.5, described
    for name in "bcd":  # a is the least recently used: evicted
        assert _predict(server, rows, target=name).status_code == 200
    assert "a" not in {m["modelName"] for m in requests.get(server.url + "/models", timeout=5).json()["models"]}
    _wait_stats(server, lambda s: s["compiled_models"] == 0)
    answer_right(None)  # reloaded cold (LightGBM), then switched at once: its file was compiled
    stats = _wait_stats(server, lambda s: s["compiled_models"] >= 1)
    assert stats["compiles_started"] == 1, stats
    answer_right(None)


def test_sigterm_stops_promptly_once_loads_handed_the_socket_around(mme):
    """Loads hand the socket from thread to thread (serving/sync_worker.py): a stop still ends
    every thread at once, not after an idle thread's timeout (gunicorn's would be 30 s here)."""
    import signal

    root, paths, rows, start = mme
    for name in "abcdef":
        model_layout(root, name, paths["other"])
    server = start(SAGEMAKER_MODEL_SERVER_TIMEOUT="60")
    with ThreadPoolExecutor(4) as pool:
        assert all(r.status_code == 200 for r in pool.map(lambda name: _predict(server, rows, target=name), "abcdef"))
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert time.monotonic() - started < 8, f"serve took {time.monotonic() - started:.1f} s to stop"
