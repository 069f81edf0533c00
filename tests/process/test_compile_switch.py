"""Start now, compile later (compilation/): the real `serve` answers at once with LightGBM,
compiles in the background, and switches every worker to the compiled trees without a
wrong or failed answer; `train` ships a compiled object that `serve` uses only when its key
fits this host. Every answer is checked against LightGBM itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
import requests

from lightgbm_container.compilation.artifact import FULL
from support import Server, make_root, run_train

FEATURES = 30
#: Large enough that compiling takes several seconds here (about 8 s on 2 cores), so the
#: server is demonstrably healthy and answering while the compile runs.
SLOW_TREES, SLOW_LEAVES = 200, 63


def _train(directory: Path, trees: int, leaves: int, seed: int, features: int = FEATURES) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20_000, features))
    y = x[:, 0] + np.sin(x[:, 1]) * x[:, 2] + rng.normal(size=len(x)) * 0.1
    params = {"objective": "regression", "num_leaves": leaves, "min_data_in_leaf": 5, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=trees)
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(directory / "model.txt"))
    return booster


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> tuple[Path, lgb.Booster]:
    """An ML root whose model takes seconds to compile."""
    root = tmp_path_factory.mktemp("slow") / "ml"
    return root, _train(root / "model", SLOW_TREES, SLOW_LEAVES, seed=1)


def _rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, FEATURES))


def _csv(rows: np.ndarray) -> str:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)


def _check(server: Server, booster: lgb.Booster, rows: np.ndarray) -> None:
    response = server.post(_csv(rows), accept="text/csv")
    assert response.status_code == 200, response.text
    got = np.loadtxt(response.text.splitlines(), ndmin=1)
    np.testing.assert_allclose(got, booster.predict(rows), rtol=1e-9, atol=1e-9)


class Traffic:
    """Requests sent back to back from a thread, every answer checked against LightGBM."""

    def __init__(self, server: Server, booster: lgb.Booster) -> None:
        self.server, self.booster = server, booster
        self.sent = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        batches = [_rows(1, seed) for seed in range(20)] + [_rows(100, 99)]
        expected = [self.booster.predict(rows) for rows in batches]
        while not self.stopping.is_set() and len(self.failures) < 5:
            index = self.sent % len(batches)
            try:
                response = session.post(
                    self.server.url + "/invocations",
                    data=_csv(batches[index]),
                    headers={"Content-Type": "text/csv", "Accept": "text/csv"},
                    timeout=30,
                )
                got = np.loadtxt(response.text.splitlines(), ndmin=1) if response.status_code == 200 else None
                if got is None or not np.allclose(got, expected[index], rtol=1e-9, atol=1e-9):
                    self.failures.append(f"request {self.sent}: {response.status_code} {response.text[:200]}")
            except requests.RequestException as exc:
                self.failures.append(f"request {self.sent}: {exc}")
            self.sent += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


def test_healthy_at_once_then_every_worker_switches_under_load(slow_model, tmp_path):
    root, booster = slow_model
    started = time.monotonic()
    server = Server(root, tmp_path / "serve.log", LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"))
    try:
        server.wait_healthy(timeout=30, every_worker=False)  # what /ping alone says
        healthy_after = time.monotonic() - started
        stats = server.stats()
        assert stats["compile"] == {"state": "compiling"}, stats  # healthy while the compile runs
        assert stats["workers_predicting_compiled"] == 0
        with Traffic(server, booster) as traffic:
            switched = server.wait_compiled(timeout=180)
            sent_at_switch = traffic.sent
            time.sleep(1.0)  # and keep going on the compiled trees
        assert not traffic.failures, traffic.failures
        assert traffic.sent > sent_at_switch > 20, (sent_at_switch, traffic.sent)
        assert switched["compile"]["state"] == "ready" and switched["compile"]["source"] == "compiled", switched
        assert switched["switches"] == 4  # each worker: the quick object, then the optimised one
        logs = server.logs()
        assert logs.count("to the compiled trees") == 4, logs[-3000:]
        # The bound the issue sets (2 s; bench/startup.py measures it), with slack for a busy CI machine.
        assert healthy_after < 5, f"healthy only after {healthy_after:.1f} s"
        _check(server, booster, _rows(1000, 7))
    finally:
        server.stop()


def test_strict_lleaves_waits_for_the_compile(slow_model, tmp_path, start_server):
    root, booster = slow_model
    shutil.copytree(root, tmp_path / "ml")
    # A small model: the strict mode compiles fully optimised before the workers start.
    _train(tmp_path / "ml" / "model", 40, 31, seed=2)
    booster = lgb.Booster(model_file=str(tmp_path / "ml" / "model" / "model.txt"))
    server = start_server(tmp_path / "ml", LIGHTGBM_PREDICTOR="lleaves", LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"))
    stats = server.stats()  # start_server waited for both workers
    assert stats["workers_predicting_compiled"] == stats["workers"] == 2, stats  # compiled from the first request
    assert stats["switches"] == 0, stats  # loaded compiled, never switched
    assert stats["compile"] is None and stats["workers_on_final_compile"] == 2
    assert "before the workers start" in server.logs()
    _check(server, booster, _rows(50, 3))


def test_a_compile_that_fails_leaves_lightgbm_serving(slow_model, tmp_path, start_server):
    root, booster = slow_model
    server = start_server(root, LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"), LIGHTGBM_COMPILE_TIMEOUT="1")
    deadline = time.monotonic() + 60
    while (server.stats()["compile"] or {}).get("state") != "failed" and time.monotonic() < deadline:
        _check(server, booster, _rows(5, 11))
        time.sleep(0.2)
    stats = server.stats()
    assert stats["compile"]["state"] == "failed" and "longer than 1 s" in stats["compile"]["reason"], stats
    time.sleep(0.5)  # the workers read the outcome within a poll
    assert server.stats()["workers_predicting_compiled"] == 0
    assert "keeps its predictor: the compile failed" in server.logs()
    _check(server, booster, _rows(200, 12))
    assert not list((tmp_path / "cache").glob("*.o"))  # nothing unchecked was stored


def _wait_compile_finished(server: Server) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = server.stats()
        compile_state = stats["compile"] or {}
        if compile_state.get("state") == "failed" or (
            compile_state.get("state") == "ready" and compile_state.get("final") is not False
        ):
            time.sleep(0.5)  # the workers read the outcome within a poll
            return server.stats()
        time.sleep(0.2)
    raise AssertionError(f"the compile never finished: {server.stats()}\n{server.logs()[-3000:]}")


def test_a_compile_too_large_for_its_memory_is_not_started(tmp_path, start_server):
    """LIGHTGBM_COMPILE_MAX_MB: 40 x 31 leaves need about 166 MB quickly, 274 MB fully optimised
    (compilation/artifact.py). Between the two, the quick object is final; below both, LightGBM
    keeps serving; either way the reason is in /stats and nothing crosses the limit."""
    booster = _train(tmp_path / "ml" / "model", 40, 31, seed=4)
    rows = _rows(100, 13)
    server = start_server(
        tmp_path / "ml", LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"), LIGHTGBM_COMPILE_MAX_MB="190"
    )
    stats = _wait_compile_finished(server)
    assert stats["compile"]["state"] == "ready" and stats["compile"]["reason"].startswith(
        "not fully optimised: 1,240 leaves"
    ), stats
    assert "LIGHTGBM_COMPILE_MAX_MB=190" in stats["compile"]["reason"]
    assert stats["workers_on_final_compile"] == stats["workers_predicting_compiled"] == 2, stats
    _check(server, booster, rows)
    assert len(list((tmp_path / "cache").glob("*.o"))) == 1  # the quick one only
    server.stop()

    server = start_server(
        tmp_path / "ml", LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache2"), LIGHTGBM_COMPILE_MAX_MB="100"
    )
    stats = _wait_compile_finished(server)
    assert stats["compile"]["state"] == "failed" and stats["compile"]["reason"].startswith(
        "not compiled: 1,240 leaves"
    ), stats
    assert stats["workers_predicting_compiled"] == 0
    _check(server, booster, rows)


def test_a_strict_server_refuses_to_start_when_the_compile_fails(slow_model, tmp_path):
    root, _ = slow_model
    server = Server(
        root,
        tmp_path / "serve.log",
        LIGHTGBM_PREDICTOR="lleaves",
        LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"),
        LIGHTGBM_COMPILE_TIMEOUT="1",
    )
    try:
        assert server.process.wait(timeout=60) == 1
        assert "LIGHTGBM_PREDICTOR=lleaves but the model could not be compiled" in server.logs()
    finally:
        server.stop()


# --------------------------------------------------------------------------- train's compiled object


@pytest.fixture(scope="module")
def shipped_root(tmp_path_factory) -> Path:
    """local_test/test_dir trained by the real `train`, compiling ahead as it does by default."""
    root = make_root(tmp_path_factory.mktemp("shipped"))
    result = run_train(root, LIGHTGBM_COMPILE_AHEAD="true")
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def _shipped(root: Path) -> tuple[Path, Path]:
    objects = list((root / "model" / "compiled").glob("lleaves-*.o"))
    keys = list((root / "model" / "compiled").glob("lleaves-*.json"))
    assert len(objects) == 1 and len(keys) == 1, list((root / "model").rglob("*"))
    return objects[0], keys[0]


def test_train_ships_a_compiled_object_that_serve_uses(shipped_root, tmp_path, start_server):
    shipped, key_file = _shipped(shipped_root)
    key = json.loads(key_file.read_text())
    assert set(key) == {"model_sha256", "lleaves", "llvmlite", "cpu", "cpu_features", "options"}
    assert not list((shipped_root / "model" / "compiled").glob(".*"))  # no scratch left behind
    server = start_server(shipped_root, LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"))
    stats = server.wait_compiled(timeout=60)
    assert stats["compile"]["source"] == "shipped", stats
    booster = lgb.Booster(model_file=str(shipped_root / "model" / "model.txt"))
    _check(server, booster, _rows(20, 5)[:, : booster.num_feature()])


def test_a_shipped_object_for_another_host_is_ignored(shipped_root, tmp_path, start_server):
    root = tmp_path / "ml"
    shutil.copytree(shipped_root, root)
    shipped, key_file = _shipped(root)
    key = json.loads(key_file.read_text())
    key["cpu"] = "some-other-cpu"  # as if trained on another instance type: its digest differs
    key_file.write_text(json.dumps(key))
    shipped.rename(shipped.with_name("lleaves-0123456789abcdef0123456789abcdef.o"))
    server = start_server(root, LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"))
    stats = server.wait_compiled(timeout=60)
    assert stats["compile"]["source"] == "compiled", stats
    assert "built for another host or version (cpu 'some-other-cpu' here" in server.logs()


def test_a_shipped_object_that_disagrees_is_rejected(shipped_root, slow_model, tmp_path, start_server):
    """An object under the right name but built from other trees: the parity check refuses it."""
    root = tmp_path / "ml"
    shutil.copytree(shipped_root, root)
    shipped, _ = _shipped(root)
    booster = lgb.Booster(model_file=str(root / "model" / "model.txt"))
    other = tmp_path / "other"
    _train(other, 5, 7, seed=4, features=booster.num_feature())  # other trees, the same number of features
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import lleaves, sys, json; m = lleaves.Model(sys.argv[1]); "
            "m.compile(cache=sys.argv[2], **json.loads(sys.argv[3]))",
            str(other / "model.txt"),
            str(tmp_path / "other.o"),
            json.dumps(FULL),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    shutil.copyfile(tmp_path / "other.o", shipped)
    server = start_server(root, LIGHTGBM_COMPILE_CACHE=str(tmp_path / "cache"))
    stats = server.wait_compiled(timeout=60)
    assert stats["compile"]["source"] == "compiled", stats
    assert "is not used: compiled predictions differ from LightGBM" in server.logs()
    _check(server, booster, _rows(20, 5)[:, : booster.num_feature()])
