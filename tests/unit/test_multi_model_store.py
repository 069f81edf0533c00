"""The multi-model store's contract in-process: SageMaker's /models API, lazy TargetModel loads,
confinement and the memory budget, through the app ``serve``'s workers run (one worker here).

tests/process keeps what needs real processes: several workers agreeing, a load that holds the
registry lock while other models answer, hot models compiled in the background.
"""

from __future__ import annotations

import shutil

import lightgbm as lgb
import numpy as np
import pytest

from support import csv_body, in_process_app, json_error, model_layout, tar_archive

TARGET = "X-Amzn-SageMaker-Target-Model"


@pytest.fixture
def mme(tmp_path, model_files):
    """(ML root with an empty models/, model files, rows, start(**env) -> Flask test client)."""
    paths, rows = model_files
    root = tmp_path / "ml"
    (root / "models").mkdir(parents=True)

    def start(**env: str):
        return in_process_app(root, SAGEMAKER_MULTI_MODEL="true", **env).test_client()

    return root, paths, rows, start


def _predict(client, rows, target=None, path="/invocations"):
    headers = {TARGET: target} if target is not None else {}
    return client.post(path, data=csv_body(rows), content_type="text/csv", headers=headers)


def _values(response) -> np.ndarray:
    assert response.status_code == 200, response.get_data(as_text=True)
    return np.array(response.get_data(as_text=True).splitlines(), dtype=float)


def test_models_api(mme):
    root, paths, rows, start = mme
    urls = {name: str(model_layout(root, name, paths["small" if name != "b" else "other"])) for name in ("a", "b", "c")}
    client = start()
    assert client.get("/models").get_json() == {"models": []}  # healthy with no model loaded
    for name, url in urls.items():
        response = client.post("/models", json={"model_name": name, "url": url})
        assert response.status_code == 200, response.get_data()
    json_error(client.post("/models", json={"model_name": "a", "url": urls["a"]}), 409, "conflict")

    first = client.get("/models", query_string={"limit": 2}).get_json()
    assert [m["modelName"] for m in first["models"]] == ["a", "b"] and first["nextPageToken"] == "2"
    second = client.get("/models", query_string={"limit": 2, "next_page_token": first["nextPageToken"]}).get_json()
    assert [(m["modelName"], m["modelUrl"]) for m in second["models"]] == [("c", urls["c"])]
    assert "nextPageToken" not in second
    described = client.get("/models/b").get_json()
    assert (described["modelName"], described["modelUrl"]) == ("b", urls["b"])
    # Beyond SageMaker's two keys: what the model costs, measured, and how it is used.
    file_size = paths["other"].stat().st_size
    assert 0.5 * file_size < described["memoryBytes"] == described["memoryBytesAllWorkers"] < 3 * file_size
    assert described["workerCopies"] == 1 and described["requests"] == 1 and 0 < described["loadSeconds"] < 5
    assert described["lastUsed"].endswith("Z") and described["loadedAt"] <= described["lastUsed"]
    json_error(client.get("/models/zzz"), 404)

    expected = {
        name: lgb.Booster(model_file=str(paths[file])).predict(rows) for name, file in (("a", "small"), ("b", "other"))
    }
    for name in ("a", "b"):
        np.testing.assert_allclose(
            _values(_predict(client, rows, path=f"/models/{name}/invoke")), expected[name], atol=1e-9
        )
    np.testing.assert_allclose(
        client.post("/models/a/invoke", json=rows.tolist()).get_json()["predictions"], expected["a"], atol=1e-9
    )
    bad = client.post("/models/a/invoke", data="1,2,3", content_type="text/csv")
    json_error(bad, 400, None, "expected 13 features, got 3")
    json_error(_predict(client, rows, path="/models/zzz/invoke"), 404)

    assert client.delete("/models/a").status_code == 200
    json_error(client.delete("/models/a"), 404)
    json_error(_predict(client, rows, path="/models/a/invoke"), 404)
    json_error(client.get("/models/a"), 404)


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
    client = mme[3]()
    response = client.post("/models", data=body) if isinstance(body, str) else client.post("/models", json=body)
    json_error(response, status, None, fragment)


def test_url_without_a_model_and_corrupt_model_keep_the_store_healthy(mme):
    root, paths, rows, start = mme
    (root / "models" / "empty").mkdir()
    broken = root / "models" / "broken" / "model"
    broken.mkdir(parents=True)
    (broken / "model.txt").write_text("tree\nversion=v4\nthis is not a model\n")
    model_layout(root, "good", paths["small"])
    client = start()
    json_error(
        client.post("/models", json={"model_name": "e", "url": str(root / "models" / "empty")}),
        400,
        None,
        "no LightGBM text model",
    )
    json_error(_predict(client, rows, target="broken"), 400, None, "cannot be loaded")
    assert _predict(client, rows, target="good").status_code == 200


def test_lazy_target_model_archive_and_directory(mme):
    root, paths, rows, start = mme
    tar_archive(root, "arch.tar.gz", [("model.txt", paths["small"].read_bytes(), "file")])
    model_layout(root, "dir", paths["other"])
    client = start()
    for _ in range(2):  # cold, then hot
        np.testing.assert_allclose(
            _values(_predict(client, rows, target="arch.tar.gz")),
            lgb.Booster(model_file=str(paths["small"])).predict(rows),
            atol=1e-9,
        )
        np.testing.assert_allclose(
            _values(_predict(client, rows, target="dir")),
            lgb.Booster(model_file=str(paths["other"])).predict(rows),
            atol=1e-9,
        )
    json_error(_predict(client, rows, target="nope.tar.gz"), 404, None, "'nope.tar.gz'")
    json_error(_predict(client, rows), 400, None, TARGET)
    assert {m["modelName"] for m in client.get("/models").get_json()["models"]} == {"arch.tar.gz", "dir"}


def test_names_and_archives_cannot_escape(mme, tmp_path):
    root, paths, rows, start = mme
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(paths["small"], outside / "model.txt")
    (root / "models" / "link").symlink_to(outside)
    tar_archive(
        root, "slip.tar.gz", [("../../evil.txt", b"x", "file"), ("model.txt", paths["small"].read_bytes(), "file")]
    )
    tar_archive(root, "abs.tar.gz", [("/tmp/evil.txt", b"x", "file")])
    tar_archive(root, "symlink.tar.gz", [("model.txt", "/etc/passwd", "link")])
    (root / "models" / "corrupt.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    client = start()
    for target, fragment in [
        ("../outside", "'..'"),
        ("/etc", "relative"),
        ("link", "outside the models directory"),
        ("slip.tar.gz", "unsafe path"),
        ("abs.tar.gz", "unsafe path"),
        ("symlink.tar.gz", "pointing outside"),
        ("corrupt.tar.gz", "cannot be read"),
    ]:
        json_error(_predict(client, rows, target=target), 400, None, fragment)
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    model_layout(root, "fine", paths["small"])
    assert _predict(client, rows, target="fine").status_code == 200


def test_nothing_outside_the_models_directory_is_opened_while_finding_a_model(mme, tmp_path):
    """Links out of the models directory at every level a model is found through: the ``model``
    entry (to a directory with user code and an MMS manifest, and to a file), a file inside the
    model, and a link to a directory inside the root whose own file links out. Each is refused
    with a 400, and an inotify watch on the outside files sees none of them opened or read."""
    from inotify_simple import INotify, flags

    root, paths, rows, start = mme
    outside = tmp_path / "outside"
    (outside / "code").mkdir(parents=True)
    (outside / "MAR-INF").mkdir()
    shutil.copy(paths["small"], outside / "model.txt")
    (outside / "code" / "inference.py").write_text("raise SystemExit('outside code ran')\n")
    (outside / "MAR-INF" / "MANIFEST.json").write_text('{"model": {"handler": "inference:handle"}}')
    models = root / "models"
    (models / "to-dir").mkdir()
    (models / "to-dir" / "model").symlink_to(outside)  # served from outside before: its code imported
    (models / "to-file").mkdir()
    (models / "to-file" / "model").symlink_to(outside / "model.txt")
    inner = model_layout(root, "inner-file", paths["small"])
    (inner / "code").mkdir()
    (inner / "code" / "inference.py").symlink_to(outside / "code" / "inference.py")
    shared = model_layout(root, "shared", paths["small"])
    (shared / "code").mkdir()
    (shared / "code" / "inference.py").symlink_to(outside / "code" / "inference.py")
    via = model_layout(root, "via-inside-link", paths["small"])
    (via / "code").symlink_to(shared / "code")  # inside the root, but what it holds links out
    watcher = INotify()
    mask = flags.OPEN | flags.ACCESS
    for directory in (outside, outside / "code", outside / "MAR-INF"):
        watcher.add_watch(str(directory), mask)
    client = start()
    for target in ("to-dir", "to-file", "inner-file", "via-inside-link"):
        json_error(_predict(client, rows, target=target), 400, None, "outside the models directory")
        response = client.post("/models", json={"model_name": f"api-{target}", "url": str(models / target)})
        json_error(response, 400, None, "outside the models directory")
    assert watcher.read(timeout=100) == [], "a file outside the models directory was opened or read"
    model_layout(root, "fine", paths["small"])
    assert _predict(client, rows, target="fine").status_code == 200


def test_eviction_is_least_recently_used_and_within_budget(mme):
    """The budget holds models by what they measured in memory at load, not by their files' size."""
    root, paths, rows, start = mme
    for name in "abcdefgh":
        model_layout(root, name, paths["small"])
    probe = start()
    assert _predict(probe, rows, target="a").status_code == 200
    size = probe.get("/models/a").get_json()["memoryBytes"]
    budget_mb = 1
    fit = budget_mb * 1024 * 1024 // size
    assert 2 <= fit <= 6, f"a model measured {size} bytes: the fixture no longer suits this test"
    client = start(LIGHTGBM_MODEL_CACHE_MB=str(budget_mb))
    names = "abcdefgh"[: fit + 1]
    for name in names[:fit]:
        assert _predict(client, rows, target=name).status_code == 200
    assert _predict(client, rows, target="a").status_code == 200  # a is now more recent than b
    assert _predict(client, rows, target=names[fit]).status_code == 200  # evicts b, the least recently used
    assert {m["modelName"] for m in client.get("/models").get_json()["models"]} == set(names) - {"b"}
    stats = client.get("/stats").get_json()
    assert stats["bytes_in_use"] <= budget_mb * 1024 * 1024 and stats["evictions"] == 1
    assert stats["local_bytes"] <= budget_mb * 1024 * 1024


def test_model_larger_than_the_budget_is_507(mme):
    root, _, _, start = mme
    features = np.random.default_rng(1).normal(size=(20000, 13))
    params = {"objective": "regression", "num_leaves": 63, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(features, features[:, 0]), 300)
    big = root / "models" / "big" / "model"
    big.mkdir(parents=True)
    booster.save_model(str(big / "model.txt"))
    assert (big / "model.txt").stat().st_size > 1024 * 1024
    client = start(LIGHTGBM_MODEL_CACHE_MB="1")
    json_error(client.post("/models", json={"model_name": "big", "url": str(big)}), 507, None, "budget")
