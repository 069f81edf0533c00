"""SageMaker's built-in LightGBM algorithm, in-process: its conventions recognised, its layouts,
hyperparameter defaults, holdout and problem type as its scripts have them, and its layout of
answers (the response style) for a model in its layout.

The real `train` and `serve` on jobs in its layouts: tests/process/test_builtin_algorithm_jobs.py.
"""

from __future__ import annotations

import io
import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from lightgbm_container.errors import TrainingError
from lightgbm_container.settings import MLPaths, SettingsError, serving_settings
from lightgbm_container.training import builtin_algorithm as builtin
from support import BUILTIN_HYPERPARAMETERS, builtin_rows, csv_body, in_process_app, json_error, npy_body

# --------------------------------------------------------------------------- training conventions


def test_the_holdout_is_the_rows_pandas_sample_picks_with_the_built_ins_seed():
    frame = pd.DataFrame({"row": np.arange(1234)})
    theirs = frame.sample(frac=0.2, random_state=200)  # the built-in's data_prep, verbatim
    kept, held_out = builtin.holdout_rows(1234)
    np.testing.assert_array_equal(held_out, theirs["row"].to_numpy())
    np.testing.assert_array_equal(kept, frame.drop(theirs.index)["row"].to_numpy())


@pytest.mark.parametrize(
    "labels, objective, num_class",
    [
        ([0, 1, 1, 0], "binary", None),
        ([3.5, 7.0, 3.5], "binary", None),  # two values: the classification script's binary
        ([0, 1, 2, 1, 0], "multiclass", 3),
        ([1, 2, 3, 1], "regression", None),  # not 0..K-1: LightGBM's multiclass could not take it
        ([0.5, 1.7, 2.2, 9.1], "regression", None),
        (np.array(["a", "b", "c"], dtype=object), "multiclass", 3),
    ],
)
def test_the_problem_type_follows_the_labels(labels, objective, num_class):
    found = builtin.problem(np.asarray(labels, dtype=None if isinstance(labels, np.ndarray) else np.float64), {})
    assert (found.objective, found.num_class) == (objective, num_class), found.reason
    assert builtin.problem(np.array([0.0, 1.0]), {"objective": "poisson"}).objective == "poisson"


def test_hyperparameters_left_out_take_the_training_scripts_defaults():
    merged, use_dask = builtin.hyperparameters({"eta": "0.2", "use_dask": "True", "metric": "auto"})
    assert use_dask is True
    assert "learning_rate" not in merged and merged["eta"] == "0.2"  # given under an alias: no default beside it
    assert merged["num_boost_round"] == 20 and merged["early_stopping_rounds"] == 5 and merged["num_leaves"] == 31
    assert "metric" not in merged  # auto: decided with the problem type
    merged, _ = builtin.hyperparameters({**BUILTIN_HYPERPARAMETERS, "early_stopping_rounds": "0"})
    assert "early_stopping_rounds" not in merged  # <= 0 disables it, as the built-in
    assert merged["num_leaves"] == "67" and "use_dask" not in merged


def _paths(tmp_path, *channels: str) -> tuple[MLPaths, object]:
    paths = MLPaths(tmp_path)
    for channel in channels:
        paths.channel(channel).mkdir(parents=True, exist_ok=True)
    return paths, lambda name: paths.channel(name).is_dir()


def test_the_built_ins_conventions_are_chosen_for_its_marks_only(tmp_path):
    paths, present = _paths(tmp_path / "a", "training")
    assert "'training' channel" in builtin.choose("auto", present, paths, {}).reason
    paths, present = _paths(tmp_path / "b", "train")
    assert builtin.choose("auto", present, paths, {"use_dask": "False"}).builtin
    assert not builtin.choose("auto", present, paths, {"num_leaves": "8"}).builtin
    (paths.channel("train") / "cat_idx.json").write_text('{"cat_idx": [2]}')  # any name, any key, as theirs
    assert "cat_idx.json" in builtin.choose("auto", present, paths, {}).reason
    assert not builtin.choose("ours", present, paths, {"use_dask": "True"}).builtin
    assert builtin.choose("builtin-algorithm", *_paths(tmp_path / "c", "train")[::-1], {}).builtin


def test_the_three_layouts_and_their_refusals(tmp_path):
    paths, present = _paths(tmp_path / "a", "training")
    (paths.channel("training") / "train").mkdir()
    (paths.channel("training") / "validation").mkdir()
    where = builtin.layout(paths, present)
    assert (where.train_name, where.validation_name) == ("training/train", "training/validation")
    paths, present = _paths(tmp_path / "b", "train", "validation")
    assert (builtin.layout(paths, present).validation_dir) == paths.channel("validation")
    paths, present = _paths(tmp_path / "c", "train")
    assert builtin.layout(paths, present).validation_dir is None
    paths, present = _paths(tmp_path / "d", "train", "training")
    with pytest.raises(TrainingError, match="both a 'train' and a 'training' channel"):
        builtin.layout(paths, present)
    paths, present = _paths(tmp_path / "e", "train")
    for name in ("a.json", "b.json"):
        (paths.channel("train") / name).write_text("{}")
    with pytest.raises(TrainingError, match="2 JSON files"):
        builtin.layout(paths, present)


@pytest.mark.parametrize(
    "document, message",
    [
        ({"cat_index_list": [1, 5]}, None),
        ({"cat_index_list": [0]}, "column 0 is outside 1-5"),
        ({"cat_index_list": [6]}, "column 6 is outside 1-5"),
        ({"cat_index_list": ["2"]}, "must be a list of column numbers from 1 to 5"),
        ([1, 2], "must be an object"),
    ],
)
def test_the_categorical_index_counts_the_target_as_column_0(tmp_path, document, message):
    index = tmp_path / "categorical_index.json"
    index.write_text(json.dumps(document))
    if message is None:
        assert builtin.categorical_positions(index, 5) == (0, 4)
    else:
        with pytest.raises(TrainingError, match=message):
            builtin.categorical_positions(index, 5)


# --------------------------------------------------------------------------- the built-in's answers


def _builtin_model_root(tmp_path, objective: str, marker: bool = True):
    """A model directory as the built-in's training leaves it: a joblib'd Booster as model.pkl
    and __models_info__.json. Returns (root, booster, the feature rows)."""
    import joblib

    data = builtin_rows(objective, 400)
    params = {"objective": objective, "verbosity": -1, **({"num_class": 3} if objective == "multiclass" else {})}
    booster = lgb.train(params, lgb.Dataset(data[:, 1:], data[:, 0]), 15)
    root = tmp_path / f"ml-{objective}"
    (root / "model").mkdir(parents=True)
    joblib.dump(booster, root / "model" / "model.pkl")
    if marker:
        (root / "model" / "__models_info__.json").write_text('{"is_trained_on_input_data": true}')
    return root, booster, data[:6, 1:]


def _theirs(booster, rows, verbose: bool) -> dict:
    """The built-in inference script's answer, computed as it computes it."""
    output = booster.predict(pd.DataFrame(rows), num_iteration=booster.best_iteration)
    if booster.params["objective"] == "regression":
        return {"prediction": output.tolist()}
    answer = {}
    if output.ndim == 1:
        output = np.vstack((1.0 - output, output)).transpose()
    answer["probabilities-1d"] = output[:, 1:].tolist()
    answer["probabilities"] = output.tolist()
    if verbose:
        answer["predicted_label"] = np.argmax(output, axis=1).tolist()
    return answer


def _assert_same(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)  # the same keys, in the same order
    for key, values in expected.items():
        np.testing.assert_allclose(np.array(got[key], dtype=float), np.array(values, dtype=float), rtol=0, atol=1e-9)


def _bodies(rows) -> dict[str, bytes | str]:
    return {
        "text/csv": csv_body(rows),
        "application/json": json.dumps(rows.tolist()),
        "application/jsonlines": "\n".join(json.dumps(row) for row in rows.tolist()),
        "application/x-npy": npy_body(rows),
    }


@pytest.mark.parametrize("objective", ["binary", "multiclass", "regression"])
def test_a_model_in_the_built_ins_layout_answers_in_its_layout_for_every_request_type(tmp_path, objective):
    root, booster, rows = _builtin_model_root(tmp_path, objective)
    client = in_process_app(root).test_client()
    for content_type, body in _bodies(rows).items():
        for accept, verbose in (
            (None, False),
            ("*/*", False),
            ("application/json", False),
            ("application/json;verbose", True),
        ):
            headers = {"Accept": accept} if accept else {}
            answer = client.post("/invocations", data=body, content_type=content_type, headers=headers)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            assert answer.content_type == (
                accept if accept and accept.startswith("application/json") else "application/json"
            )
            _assert_same(answer.get_json(), _theirs(booster, rows, verbose))


def test_other_answer_types_and_chosen_kinds_take_the_standard_layouts(tmp_path):
    root, booster, rows = _builtin_model_root(tmp_path, "multiclass")
    client = in_process_app(root).test_client()
    probabilities = booster.predict(rows)
    as_csv = client.post("/invocations", data=csv_body(rows), content_type="text/csv", headers={"Accept": "text/csv"})
    np.testing.assert_allclose(np.loadtxt(io.StringIO(as_csv.get_data(as_text=True)), delimiter=","), probabilities)
    chosen = client.post(
        "/invocations",
        data=csv_body(rows),
        content_type="text/csv",
        headers={"Accept": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "output=predicted_label"},
    )
    assert chosen.get_json() == {"predictions": [{"predicted_label": int(i)} for i in probabilities.argmax(axis=1)]}
    csv_default = in_process_app(root, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT="text/csv").test_client()
    answer = csv_default.post("/invocations", data=csv_body(rows), content_type="text/csv")
    assert (
        answer.content_type == "text/csv"
    )  # a missing Accept is SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, as the toolkit's


def test_the_style_is_the_models_unless_the_setting_says_otherwise(tmp_path):
    root, booster, rows = _builtin_model_root(tmp_path, "binary")
    standard = in_process_app(root, LIGHTGBM_RESPONSE_STYLE="standard").test_client()
    answer = standard.post("/invocations", data=csv_body(rows), content_type="text/csv")
    np.testing.assert_allclose(np.array(answer.get_data(as_text=True).split(), dtype=float), booster.predict(rows))
    bare_root, bare, bare_rows = _builtin_model_root(tmp_path / "bare", "binary", marker=False)
    bare_answer = (
        in_process_app(bare_root).test_client().post("/invocations", data=csv_body(bare_rows), content_type="text/csv")
    )
    assert answer.content_type == bare_answer.content_type == "text/csv"  # a model.pkl alone is not theirs
    forced = in_process_app(bare_root, LIGHTGBM_RESPONSE_STYLE="builtin-algorithm").test_client()
    _assert_same(
        forced.post("/invocations", data=csv_body(bare_rows), content_type="text/csv").get_json(),
        _theirs(bare, bare_rows, False),
    )
    with pytest.raises(
        SettingsError, match="'builtin' is not a response style; use one of auto, standard, builtin-algorithm"
    ):
        in_process_app(root, LIGHTGBM_RESPONSE_STYLE="builtin")
    assert serving_settings({"LIGHTGBM_RESPONSE_STYLE": "Builtin-Algorithm"}).response_style == "builtin-algorithm"


def test_refusals_stay_json_errors_in_the_built_ins_style(tmp_path):
    root, _, rows = _builtin_model_root(tmp_path, "binary")
    client = in_process_app(root).test_client()
    json_error(
        client.post("/invocations", data="1,2", content_type="text/csv"), 400, None, "expected 5 features, got 2"
    )
    json_error(
        client.post("/invocations", data=csv_body(rows), content_type="text/csv", headers={"Accept": "image/png"}), 406
    )
