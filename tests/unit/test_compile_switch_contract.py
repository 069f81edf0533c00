"""The compile switch in-process: a worker's model moves to the compiled trees when its compile job
reports, between requests, and never on a failure. The job's object is compiled here with the
same lleaves options the job uses; tests/process runs the real job beside the real workers.
"""

from __future__ import annotations

import time
from pathlib import Path

import lleaves
import numpy as np
import pytest

from lightgbm_container.builtin.handler import BuiltinOptions, LightGBMHandler
from lightgbm_container.compilation.artifact import QUICK
from lightgbm_container.compilation.status import FAILED, READY, CompileStatus, write_status
from support import ROWS


@pytest.fixture(scope="module")
def compiled_object(trained_root, tmp_path_factory) -> Path:
    """The trained model compiled as the job's quick stage does."""
    target = tmp_path_factory.mktemp("compiled") / "model.o"
    lleaves.Model(model_file=str(trained_root / "model" / "model.txt")).compile(cache=str(target), **QUICK)
    return target


def _wait_for(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def _model(trained_root, status_file: Path):
    handler = LightGBMHandler(BuiltinOptions(predict_threads=1, max_values=10**6, compile_status=status_file))
    return handler.load(trained_root / "model")


def test_the_model_switches_to_the_compiled_trees_when_the_job_reports(
    trained_root, tmp_path, booster, compiled_object
):
    status_file = tmp_path / "compile.json"
    write_status(status_file, CompileStatus("compiling"))
    model = _model(trained_root, status_file)
    assert model.predictor.name == "lightgbm"
    rows = np.array(ROWS, dtype=float)
    before = model.predict(rows)
    write_status(status_file, CompileStatus(READY, object=str(compiled_object), source="compiled", final=True))
    assert _wait_for(lambda: model.predictor.name == "lleaves"), "no switch within 10 s"
    assert model.predictor.object_file == compiled_object
    np.testing.assert_allclose(model.predict(rows), booster.predict(rows), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict(rows), before, rtol=0, atol=1e-9)


def test_a_failed_compile_leaves_lightgbm_predicting(trained_root, tmp_path, booster):
    status_file = tmp_path / "compile.json"
    write_status(status_file, CompileStatus(FAILED, reason="LLVM ran out of memory"))
    model = _model(trained_root, status_file)
    time.sleep(0.5)  # the switcher polls every 0.2 s: it has seen the failure
    assert model.predictor.name == "lightgbm"
    rows = np.array(ROWS, dtype=float)
    np.testing.assert_allclose(model.predict(rows), booster.predict(rows), rtol=0, atol=1e-12)


def test_a_user_booster_switches_only_when_the_compiled_trees_agree_with_it(trained_root, tmp_path, compiled_object):
    """A model_fn's own Booster is adopted by the built-in predict_fn: the compiled object must agree with it."""
    import lightgbm as lgb

    status_file = tmp_path / "compile.json"
    write_status(status_file, CompileStatus(READY, object=str(compiled_object), source="compiled", final=True))
    handler = LightGBMHandler(BuiltinOptions(predict_threads=1, max_values=10**6, compile_status=status_file))
    same = lgb.Booster(model_file=str(trained_root / "model" / "model.txt"))
    handler.adopt(same, trained_root / "model")
    assert _wait_for(lambda: handler._loaded(same).predictor.name == "lleaves")

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "model.txt").write_bytes((trained_root / "model" / "model.txt").read_bytes())
    features = np.random.default_rng(0).normal(size=(200, 10))
    different = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(features, features[:, 0]), 5)
    handler.adopt(different, other_dir)
    time.sleep(1.0)
    assert handler._loaded(different).predictor.name == "lightgbm"  # its predictions differ from the object's
