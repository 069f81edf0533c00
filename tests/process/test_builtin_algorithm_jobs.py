"""SageMaker's built-in LightGBM algorithm's jobs and clients, on the real `train` and `serve`:
each of its layouts with its default hyperparameters, the problem type and metric it would
choose, its metric lines for its tuning regexes, its model files, answers in its layout (and
ours with the switch off), its own inference script as user code, and multi-model.

The conventions' parts one by one, in-process: tests/unit/test_builtin_algorithm.py.
"""

from __future__ import annotations

import json
import re
import shutil

import joblib
import lightgbm as lgb
import numpy as np
import pytest

from support import (
    BUILTIN_METRIC_REGEXES,
    EXAMPLES,
    builtin_job_root,
    builtin_rows,
    csv_body,
    model_layout,
    run_train,
    tar_archive,
)

JOBS = [  # (objective, layout, the metric metric=auto picks)
    ("binary", "subfolders", "binary_logloss"),
    ("multiclass", "channels", "multi_logloss"),
    ("regression", "subfolders, no validation", "rmse"),
]


def _trained(tmp_path, objective: str, layout: str, **env: str):
    root = builtin_job_root(tmp_path, objective, layout)
    result = run_train(root, **env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root, result.stdout + result.stderr


@pytest.mark.parametrize("objective, layout, metric", JOBS)
def test_a_built_in_job_trains_as_the_built_in_would(tmp_path, objective, layout, metric):
    root, log = _trained(tmp_path, objective, layout)
    assert "this job follows builtin-algorithm conventions" in log
    assert f"objective {objective} (" in log and f"metric {metric}" in log
    assert "categorical features from categorical_index.json: columns [4]" in log
    if "no validation" in layout:
        assert "no validation data: 144 of the 720 training rows (20%, seed 200, as the built-in algorithm)" in log
    # Their tuning regexes find a value on every round's line, as on the built-in's log.
    rounds = [line for line in log.splitlines() if re.match(r"^\[\d+\]\ttrain's ", line)]
    assert len(rounds) >= 10
    assert all(re.search(BUILTIN_METRIC_REGEXES[metric], line) for line in rounds)
    assert re.match(rf"^\[1\]\ttrain's {metric}: [0-9.e+-]+\tval's {metric}: [0-9.e+-]+$", rounds[0])
    model_dir = root / "model"
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["conventions"] == metadata["response_style"] == "builtin-algorithm"
    assert metadata["feature_names"] == ["1", "2", "3", "4", "5"] and metadata["categorical_features"] == ["4"]
    assert json.loads((model_dir / "__models_info__.json").read_text()) == {"is_trained_on_input_data": True}
    pickled = joblib.load(model_dir / "model.pkl")  # what the built-in's users load
    assert isinstance(pickled, lgb.Booster)
    rows = builtin_rows(objective, 50, seed=9)[:, 1:]
    text = lgb.Booster(model_file=str(model_dir / "model.txt"))
    np.testing.assert_allclose(pickled.predict(rows, num_iteration=pickled.best_iteration), text.predict(rows))


def test_the_models_answer_in_the_built_ins_layout_and_in_ours_with_the_switch_off(tmp_path, start_server):
    root, _ = _trained(tmp_path, "binary", "subfolders")
    rows = builtin_rows("binary", 8, seed=9)[:, 1:]
    p1 = lgb.Booster(model_file=str(root / "model" / "model.txt")).predict(rows)
    server = start_server(root)
    answer = server.post(csv_body(rows), accept="application/json;verbose")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json;verbose"
    body = answer.json()
    assert list(body) == ["probabilities-1d", "probabilities", "predicted_label"]
    np.testing.assert_allclose(np.array(body["probabilities"]), np.column_stack([1 - p1, p1]), atol=1e-9)
    np.testing.assert_allclose(np.array(body["probabilities-1d"])[:, 0], p1, atol=1e-9)
    assert body["predicted_label"] == (p1 > 0.5).astype(int).tolist()
    records = [dict(zip(["1", "2", "3", "4", "5"], row, strict=True)) for row in rows.tolist()]
    by_name = server.post(json.dumps(records), "application/json")  # our request forms, their layout
    assert list(by_name.json()) == ["probabilities-1d", "probabilities"]
    ours = start_server(root, LIGHTGBM_RESPONSE_STYLE="standard").post(csv_body(rows))
    np.testing.assert_allclose(np.array(ours.text.split(), dtype=float), p1, atol=1e-9)


def test_a_plain_train_channel_follows_the_built_in_when_told_to(tmp_path):
    root = builtin_job_root(
        tmp_path, "regression", "train alone", hyperparameters={"num_boost_round": "5"}, index=False
    )
    ours = run_train(root)  # no mark of the built-in: our conventions, the label last
    assert "this job follows ours conventions" in ours.stdout + ours.stderr
    result = run_train(root, LIGHTGBM_CONVENTIONS="builtin-algorithm")
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "LIGHTGBM_CONVENTIONS=builtin-algorithm" in log and "label column 0" in log
    assert "144 of the 720 training rows" in log and "objective regression" in log


def test_a_model_channel_continues_training_from_the_built_ins_artifact(tmp_path):
    first, _ = _trained(tmp_path / "first", "regression", "subfolders")
    trees = lgb.Booster(model_file=str(first / "model" / "model.txt")).num_trees()
    root = builtin_job_root(tmp_path / "second", "regression", "subfolders")
    tar_archive(  # the `model` channel: what the built-in's job leaves, as a model.tar.gz
        root / "input" / "data",
        "model.tar.gz",
        [(name, (first / "model" / name).read_bytes(), "file") for name in ("model.pkl", "__models_info__.json")],
    )
    (root / "input" / "data" / "models").rename(root / "input" / "data" / "model")
    result = run_train(root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"training continues from model.tar.gz's model.pkl ({trees} trees)" in result.stdout + result.stderr
    assert lgb.Booster(model_file=str(root / "model" / "model.txt")).num_trees() > trees


def test_a_job_with_both_train_and_training_channels_fails_as_the_built_in_does(tmp_path):
    root = builtin_job_root(tmp_path, "binary", "subfolders")
    shutil.copytree(root / "input" / "data" / "training" / "train", root / "input" / "data" / "train")
    result = run_train(root)
    assert result.returncode != 0
    assert "both a 'train' and a 'training' channel" in (root / "output" / "failure").read_text()


JUMPSTART_SCRIPT = EXAMPLES / "builtin_algorithm"


@pytest.mark.parametrize("objective", ["binary", "multiclass", "regression"])
def test_the_built_ins_own_inference_script_runs_unchanged_and_agrees_with_our_layout(
    tmp_path, start_server, objective
):
    """Their model.tar.gz carries their inference script in code/ (re-created in examples/, with
    its constants package and the toolkit's encoder): it runs as user code, and the answers are
    the ones our layout gives the same model.pkl without it."""
    root, _ = _trained(tmp_path, objective, "subfolders")
    model_dir = root / "model"
    for name in ("model.txt", "metadata.json"):
        (model_dir / name).unlink()  # what the built-in leaves: model.pkl, __models_info__.json, code/
    shutil.copytree(JUMPSTART_SCRIPT, model_dir / "code")
    rows = builtin_rows(objective, 6, seed=9)[:, 1:]
    theirs = start_server(root).post(csv_body(rows), accept="application/json;verbose")
    assert theirs.status_code == 200, theirs.text
    shutil.rmtree(model_dir / "code")
    ours = start_server(root).post(csv_body(rows), accept="application/json;verbose")
    assert list(ours.json()) == list(theirs.json())
    for key, values in theirs.json().items():
        np.testing.assert_allclose(np.array(ours.json()[key]), np.array(values), rtol=0, atol=1e-9)


def test_multi_model_answers_each_model_in_its_own_layout(tmp_path, start_server, model_files):
    root, _ = _trained(tmp_path, "multiclass", "channels")
    mme = tmp_path / "mme"
    paths, text_rows = model_files
    model_layout(mme, "text", paths["small"])
    tar_archive(  # the built-in's own artifact
        mme,
        "builtin.tar.gz",
        [(name, (root / "model" / name).read_bytes(), "file") for name in ("model.pkl", "__models_info__.json")],
    )
    server = start_server(mme, SAGEMAKER_MULTI_MODEL="true")
    rows = builtin_rows("multiclass", 4, seed=9)[:, 1:]
    builtin = server.post(csv_body(rows), **{"X-Amzn-SageMaker-Target-Model": "builtin.tar.gz"})
    assert builtin.status_code == 200, builtin.text
    assert list(builtin.json()) == ["probabilities-1d", "probabilities"]
    text = server.post(csv_body(text_rows[:2]), **{"X-Amzn-SageMaker-Target-Model": "text"})
    assert text.status_code == 200 and len(text.text.split()) == 2  # ours: one line per record
