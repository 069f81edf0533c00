"""The real `train` executable on temporary ML roots."""

import json
import re
import shutil

import numpy as np
import pytest

from support import DATA, make_root, run_train


def test_regression_with_validation_and_early_stopping(tmp_path):
    root = make_root(tmp_path)
    result = run_train(root)
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert "train: 353 rows, 10 features from 1 file(s); label column 10" in log
    assert "validation: 89 rows, 10 features" in log
    rounds = re.findall(r"^\[(\d+)\] train-rmse=([0-9.eE+-]+); validation-rmse=([0-9.eE+-]+);$", result.stdout, re.M)
    assert len(rounds) >= 20 and rounds[0][0] == "1"
    metadata = json.loads((root / "model" / "metadata.json").read_text())
    assert metadata["best_iteration"] < 300 and metadata["num_trees"] == metadata["best_iteration"]
    assert metadata["feature_names"] == [f"Column_{i}" for i in range(10)]
    assert metadata["metrics"]["validation"]["rmse"] > 0 and metadata["versions"]["lightgbm"]
    assert not list((root / "model").glob(".*"))  # no staging files left behind
    assert not (root / "output" / "failure").exists()


def _wine_root(tmp_path, hyperparameters):
    root = make_root(tmp_path, hyperparameters)
    shutil.rmtree(root / "input" / "data")
    (root / "input" / "data" / "train").mkdir(parents=True)
    shutil.copy(DATA / "wine.csv", root / "input" / "data" / "train" / "wine.csv")
    return root


def test_multiclass_with_header_and_named_label(tmp_path):
    root = _wine_root(tmp_path, {"objective": "multiclass", "label_column": "class", "num_boost_round": "20"})
    result = run_train(root)
    assert result.returncode == 0, result.stderr
    assert "label column 13 ('class'); header row detected" in result.stdout + result.stderr
    metadata = json.loads((root / "model" / "metadata.json").read_text())
    assert metadata["num_class"] == 3 and metadata["classes"] == [0, 1, 2]
    assert metadata["feature_names"][0] == "alcohol" and "class" not in metadata["feature_names"]


def test_binary_labels_are_encoded_and_remembered(tmp_path):
    root = make_root(tmp_path, {"objective": "binary", "num_boost_round": "10"})
    train = root / "input" / "data" / "train"
    shutil.rmtree(root / "input" / "data" / "validation")
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 3))
    labels = np.where(rows[:, 0] > 0, 7, 3)
    (train / "diabetes_train.csv").write_text("\n".join(",".join(map(str, [*r, l])) for r, l in zip(rows, labels)))
    result = run_train(root)
    assert result.returncode == 0, result.stderr
    assert json.loads((root / "model" / "metadata.json").read_text())["classes"] == [3, 7]


@pytest.mark.parametrize(
    "hyperparameters, expected",
    [
        ({"lerning_rate": "0.1"}, "unknown hyperparameter 'lerning_rate'; did you mean 'learning_rate'?"),
        ({"num_leafs": "7"}, "unknown hyperparameter 'num_leafs'; did you mean 'num_leaves'? (LightGBM also accepts the alias 'num_leaf')"),
        ({"num_leaves": '"many"'}, "num_leaves"),
        ({"objective": "regresion"}, "regresion"),
        ({"label_column": '"price"'}, "names a column, but the CSV has no header row"),
    ],
)
def test_bad_hyperparameters_fail_with_a_reason(tmp_path, hyperparameters, expected):
    root = make_root(tmp_path, hyperparameters)
    result = run_train(root)
    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert expected in failure and len(failure) <= 1024
    assert not (root / "model" / "model.txt").exists()


def test_bad_data_names_file_line_and_column(tmp_path):
    root = make_root(tmp_path)
    path = root / "input" / "data" / "train" / "diabetes_train.csv"
    lines = path.read_text().splitlines()
    fields = lines[41].split(",")
    fields[1] = "n/a?"
    lines[41] = ",".join(fields)
    path.write_text("\n".join(lines))
    result = run_train(root)
    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert "train/diabetes_train.csv line 42, column 2: 'n/a?' is not a number" in failure


def test_missing_train_channel_and_pipe_mode(tmp_path):
    root = make_root(tmp_path)
    shutil.rmtree(root / "input" / "data" / "train")
    assert run_train(root).returncode != 0
    assert "channel 'train' is missing" in (root / "output" / "failure").read_text()

    root = make_root(tmp_path / "pipe")
    (root / "input" / "config" / "inputdataconfig.json").write_text(json.dumps({"train": {"TrainingInputMode": "Pipe"}}))
    assert run_train(root).returncode != 0
    assert "Pipe input mode" in (root / "output" / "failure").read_text()


def test_early_stopping_without_validation_is_explained(tmp_path):
    root = make_root(tmp_path)
    shutil.rmtree(root / "input" / "data" / "validation")
    assert run_train(root).returncode != 0
    assert "early_stopping_rounds needs a 'validation' channel" in (root / "output" / "failure").read_text()
