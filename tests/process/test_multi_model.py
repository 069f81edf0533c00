"""The real `serve` in multi-model mode (SAGEMAKER_MULTI_MODEL=true), 2 workers, over HTTP."""

import io
import shutil
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np
import pytest
import requests

TARGET = "X-Amzn-SageMaker-Target-Model"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Two models trained here: 'small' (~0.3 MB) and 'other' (different predictions)."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(5000, 13))
    labels = features @ rng.normal(size=13) + np.sin(features[:, 0]) * 3
    out = tmp_path_factory.mktemp("models")
    paths = {}
    for name, rounds in (("small", 100), ("other", 20)):
        booster = lgb.train({"objective": "regression", "num_leaves": 31, "verbosity": -1}, lgb.Dataset(features, labels), rounds)
        paths[name] = out / f"{name}.txt"
        booster.save_model(str(paths[name]))
    return paths, features[:20]


def _layout(root, name, model_file):
    """SageMaker's layout: models/<name>/model/<file>."""
    target = root / "models" / name / "model"
    target.mkdir(parents=True)
    shutil.copy(model_file, target / "model.txt")
    return target


def _archive(root, name, members):
    path = root / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for member_name, data, kind in members:
            info = tarfile.TarInfo(member_name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
    return path


def _csv(rows):
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)


def _predict(server, rows, target=None, path="/invocations"):
    headers = {"Content-Type": "text/csv"}
    if target is not None:
        headers[TARGET] = target
    return requests.post(server.url + path, data=_csv(rows), headers=headers, timeout=30)


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


def test_models_api(mme):
    root, paths, rows, start = mme
    urls = {name: str(_layout(root, name, paths["small" if name != "b" else "other"])) for name in ("a", "b", "c")}
    server = start()
    for name, url in urls.items():
        response = requests.post(server.url + "/models", json={"model_name": name, "url": url}, timeout=30)
        assert response.status_code == 200, response.text
    again = requests.post(server.url + "/models", json={"model_name": "a", "url": urls["a"]}, timeout=30)
    assert again.status_code == 409 and again.json()["error"] == "conflict"

    first = requests.get(server.url + "/models", params={"limit": 2}, timeout=5).json()
    assert [m["modelName"] for m in first["models"]] == ["a", "b"] and first["nextPageToken"] == "2"
    second = requests.get(server.url + "/models", params={"limit": 2, "next_page_token": first["nextPageToken"]}, timeout=5).json()
    assert second == {"models": [{"modelName": "c", "modelUrl": urls["c"]}]}
    assert requests.get(server.url + "/models/b", timeout=5).json() == {"modelName": "b", "modelUrl": urls["b"]}
    assert requests.get(server.url + "/models/zzz", timeout=5).status_code == 404

    expected = {"a": lgb.Booster(model_file=str(paths["small"])).predict(rows), "b": lgb.Booster(model_file=str(paths["other"])).predict(rows)}
    for name in ("a", "b"):
        response = _predict(server, rows, target=name, path=f"/models/{name}/invoke")
        np.testing.assert_allclose(_values(response), expected[name], atol=1e-9)
    json_answer = requests.post(server.url + "/models/a/invoke", json=rows.tolist(), timeout=30)
    np.testing.assert_allclose(json_answer.json()["predictions"], expected["a"], atol=1e-9)
    bad = requests.post(server.url + "/models/a/invoke", data="1,2,3", headers={"Content-Type": "text/csv"}, timeout=30)
    assert bad.status_code == 400 and "expected 13 features, got 3" in bad.json()["message"]
    assert _predict(server, rows, path="/models/zzz/invoke").status_code == 404

    assert requests.delete(server.url + "/models/a", timeout=5).status_code == 200
    assert requests.delete(server.url + "/models/a", timeout=5).status_code == 404
    for _ in range(6):  # whichever worker answers, it is gone
        assert _predict(server, rows, path="/models/a/invoke").status_code == 404
        assert requests.get(server.url + "/models/a", timeout=5).status_code == 404


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"model_name": "x", "url": "nonexistent/model"}, 404, "does not exist"),  # relative to the models directory
        ({"model_name": "x", "url": "/nonexistent/model"}, 400, "outside the models directory"),
        ({"model_name": "x"}, 400, "model_name"),
        ("not json", 400, "not valid JSON"),
        ({"model_name": "", "url": "/tmp"}, 400, "non-empty"),
    ],
)
def test_bad_load_requests(mme, body, status, fragment):
    _, _, _, start = mme
    server = start()
    if isinstance(body, str):
        response = requests.post(server.url + "/models", data=body, timeout=10)
    else:
        response = requests.post(server.url + "/models", json=body, timeout=10)
    assert response.status_code == status and fragment in response.json()["message"], response.text


def test_url_without_a_model_and_corrupt_model_keep_the_store_healthy(mme):
    root, paths, rows, start = mme
    (root / "models" / "empty").mkdir()
    broken = root / "models" / "broken" / "model"
    broken.mkdir(parents=True)
    (broken / "model.txt").write_text("tree\nversion=v4\nthis is not a model\n")
    _layout(root, "good", paths["small"])
    server = start()
    response = requests.post(server.url + "/models", json={"model_name": "e", "url": str(root / "models" / "empty")}, timeout=10)
    assert response.status_code == 400 and "no LightGBM text model" in response.json()["message"]
    response = _predict(server, rows, target="broken")
    assert response.status_code == 400 and "cannot be loaded" in response.json()["message"]
    assert response.headers["Content-Type"] == "application/json"
    assert _predict(server, rows, target="good").status_code == 200


def test_lazy_target_model_archive_and_directory(mme):
    root, paths, rows, start = mme
    _archive(root, "arch.tar.gz", [("model.txt", paths["small"].read_bytes(), "file")])
    _layout(root, "dir", paths["other"])
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


def test_names_and_archives_cannot_escape(mme, tmp_path):
    root, paths, rows, start = mme
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(paths["small"], outside / "model.txt")
    (root / "models" / "link").symlink_to(outside)
    _archive(root, "slip.tar.gz", [("../../evil.txt", b"x", "file"), ("model.txt", paths["small"].read_bytes(), "file")])
    _archive(root, "abs.tar.gz", [("/tmp/evil.txt", b"x", "file")])
    _archive(root, "symlink.tar.gz", [("model.txt", "/etc/passwd", "link")])
    (root / "models" / "corrupt.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    server = start()
    for target, fragment in [
        ("../outside", "'..'"),
        ("/etc", "relative"),
        ("link", "outside the models directory"),
        ("slip.tar.gz", "unsafe path"),
        ("abs.tar.gz", "unsafe path"),
        ("symlink.tar.gz", "pointing outside"),
        ("corrupt.tar.gz", "cannot be read"),
    ]:
        response = _predict(server, rows, target=target)
        assert response.status_code == 400, (target, response.text)
        assert fragment in response.json()["message"], (target, response.text)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    _layout(root, "fine", paths["small"])
    assert _predict(server, rows, target="fine").status_code == 200


def test_eviction_is_least_recently_used_and_within_budget(mme):
    root, paths, rows, start = mme
    size = paths["small"].stat().st_size
    budget_mb = 1
    assert 3 * size <= budget_mb * 1024 * 1024 < 4 * size, "fixture model size no longer fits this test"
    for name in "abcd":
        _layout(root, name, paths["small"])
    server = start(LIGHTGBM_MODEL_CACHE_MB=str(budget_mb))
    for name in "abc":
        assert _predict(server, rows, target=name).status_code == 200
    assert _predict(server, rows, target="a").status_code == 200  # a is now more recent than b
    assert _predict(server, rows, target="d").status_code == 200  # evicts b, the least recently used
    listed = {m["modelName"] for m in requests.get(server.url + "/models", timeout=5).json()["models"]}
    assert listed == {"a", "c", "d"}
    stats = requests.get(server.url + "/stats", timeout=5).json()
    assert stats["bytes_in_use"] <= budget_mb * 1024 * 1024 and stats["evictions"] >= 1
    assert stats["local_bytes"] <= 2 * budget_mb * 1024 * 1024  # two workers, each within the budget


def test_model_larger_than_the_budget_is_507(mme, tmp_path):
    root, _, _, start = mme
    rng = np.random.default_rng(1)
    features = rng.normal(size=(20000, 13))
    booster = lgb.train({"objective": "regression", "num_leaves": 63, "verbosity": -1}, lgb.Dataset(features, features[:, 0]), 300)
    big = root / "models" / "big" / "model"
    big.mkdir(parents=True)
    booster.save_model(str(big / "model.txt"))
    assert (big / "model.txt").stat().st_size > 1024 * 1024
    server = start(LIGHTGBM_MODEL_CACHE_MB="1")
    response = requests.post(server.url + "/models", json={"model_name": "big", "url": str(big)}, timeout=30)
    assert response.status_code == 507 and "budget" in response.json()["message"]


def test_cross_worker_consistency_under_concurrency(mme):
    root, paths, rows, start = mme
    url = str(_layout(root, "shared", paths["small"]))
    _layout(root, "lazy", paths["other"])
    server = start()
    expected = lgb.Booster(model_file=str(paths["small"])).predict(rows)

    assert requests.post(server.url + "/models", json={"model_name": "shared", "url": url}, timeout=30).status_code == 200
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _predict(server, rows, path="/models/shared/invoke"), range(48)))
        listings = list(pool.map(lambda _: requests.get(server.url + "/models", timeout=10).json(), range(16)))
        lazy = list(pool.map(lambda _: _predict(server, rows, target="lazy"), range(16)))
    for answer in answers:
        np.testing.assert_allclose(_values(answer), expected, atol=1e-9)
    assert all(answer.status_code == 200 for answer in lazy)
    assert all(listing == listings[0] for listing in listings)
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
    _layout(root, "loaded", paths["small"])
    _layout(root, "slow", paths["other"])
    server = start(SAGEMAKER_MODEL_SERVER_WORKERS="1")
    assert "1 gunicorn gthread (4 threads) workers" in server.logs()
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
        _layout(root, name, paths["small"])
    server = start(LIGHTGBM_MODEL_CACHE_MB="1", LIGHTGBM_COMPILE_CACHE=str(root.parent / "cache"))

    def answer_right(_):
        np.testing.assert_allclose(_values(_predict(server, rows, target="a")), expected, rtol=1e-9, atol=1e-9)

    with ThreadPoolExecutor(2) as pool:  # two connections: both workers get their share
        list(pool.map(answer_right, range(3 * HOT_AFTER_REQUESTS)))
    stats = _wait_stats(server, lambda s: s["compiled_models"] >= 1)
    assert stats["compiles_started"] == 1, stats  # one job, whichever worker got hot first
    assert "model a is hot" in server.logs()
    # quick object first, then the optimised one: every compiled copy ends on the job's last object
    _wait_stats(server, lambda s: 1 <= s["final_compiled_models"] == s["compiled_models"])
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(answer_right, range(50)))
    for name in "bcd":  # a is the least recently used: evicted
        assert _predict(server, rows, target=name).status_code == 200
    assert "a" not in {m["modelName"] for m in requests.get(server.url + "/models", timeout=5).json()["models"]}
    _wait_stats(server, lambda s: s["compiled_models"] == 0)
    answer_right(None)  # reloaded cold (LightGBM), then switched at once: its file was compiled
    stats = _wait_stats(server, lambda s: s["compiled_models"] >= 1)
    assert stats["compiles_started"] == 1, stats
    answer_right(None)
