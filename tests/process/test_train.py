"""The real `train` executable on temporary ML roots."""

import json
import re
import shutil
import time

import lightgbm as lgb
import numpy as np
import pytest

from support import DATA, REPO, make_root, run_train


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
        (
            {"num_leafs": "7"},
            "unknown hyperparameter 'num_leafs'; did you mean 'num_leaves'? (LightGBM also accepts the alias 'num_leaf')",
        ),
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

    root = make_root(tmp_path / "pipe")  # Pipe mode, and SageMaker made no FIFO
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"TrainingInputMode": "Pipe"}})
    )
    assert run_train(root).returncode != 0
    assert "channel 'train' is in Pipe mode but SageMaker's FIFO" in (root / "output" / "failure").read_text()


def test_early_stopping_without_validation_is_explained(tmp_path):
    root = make_root(tmp_path)
    shutil.rmtree(root / "input" / "data" / "validation")
    assert run_train(root).returncode != 0
    assert "early_stopping_rounds needs a 'validation' channel" in (root / "output" / "failure").read_text()


# ------------------------------------------------------------------ the user's own training script


def _script_root(tmp_path, hyperparameters, source_dir):
    """A job as Estimator(entry_point="train.py", source_dir=...) sends it: JSON-encoded values,
    sagemaker_program and sagemaker_submit_directory, resolvable host names (as in SageMaker)."""
    root = make_root(
        tmp_path,
        {key: json.dumps(value) for key, value in hyperparameters.items()}
        | {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(str(source_dir))},
    )
    resource = {"current_host": "localhost", "hosts": ["localhost"], "network_interface_name": "lo"}
    (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(resource))
    return root


def test_a_user_training_script_runs_with_sagemakers_script_mode_contract(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO / "examples" / "training", source)
    root = _script_root(tmp_path, {"num_leaves": 7, "rounds": 20}, source)
    result = run_train(root)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "training with the user script" in log and "train.py --num_leaves 7 --rounds 20" in log
    assert "SM_CHANNEL_TRAIN=" in log and "trained 20 trees on 353 rows" in log
    booster = lgb.Booster(model_file=str(root / "model" / "model.txt"))
    assert booster.num_trees() == 20 and booster.params["num_leaves"] == 7


def test_a_failing_user_script_fails_the_job_with_its_exit_code_and_error(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("raise FileNotFoundError('no data for me')\n")
    root = _script_root(tmp_path, {}, source)
    result = run_train(root)
    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("ClientError: the training script train.py failed") and "ExitCode 1" in failure, failure
    # sagemaker-training captures stderr in chunks and strips " :" at each chunk's edges, so the
    # exception and its message may arrive apart: both must be there, not necessarily joined.
    assert "FileNotFoundError" in failure and "no data for me" in failure


def test_a_user_scripts_requirements_are_installed_first(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "requirements.txt").write_text("no-such-package-anywhere==9.9\n")
    (source / "train.py").write_text("print('never reached')\n")
    root = _script_root(tmp_path, {}, source)
    result = run_train(root, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0", PIP_TIMEOUT="2")
    assert result.returncode != 0 and "never reached" not in result.stdout
    assert "installing requirements.txt for train.py failed" in (root / "output" / "failure").read_text()
    assert "no-such-package-anywhere" in result.stdout + result.stderr  # pip's own error, in the log


def test_a_user_script_missing_from_the_submitted_code_is_named_with_where_it_was_looked_for(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "prepare.py").write_text("print('not the entry point')\n")
    root = _script_root(tmp_path, {}, source)  # sagemaker_program "train.py"
    result = run_train(root)
    assert result.returncode != 0
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith(
        "ClientError: sagemaker_program='train.py': there is no train.py in the submitted code"
    ), failure
    assert str(source) in failure and "prepare.py" in failure, failure


def test_a_host_name_that_never_resolves_fails_the_user_script_job_in_bounded_time(tmp_path):
    """Outside SageMaker (a copied resourceconfig.json) the job's own name may not resolve:
    sagemaker-training would retry for 15 minutes; LIGHTGBM_NETWORK_TIMEOUT bounds the wait."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('never reached')\n")
    root = _script_root(tmp_path, {}, source)
    resource = {"current_host": "algo-1-nowhere.invalid", "hosts": ["algo-1-nowhere.invalid"]}
    (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(resource))
    started = time.monotonic()
    result = run_train(root, LIGHTGBM_NETWORK_TIMEOUT="2")
    assert result.returncode != 0 and time.monotonic() - started < 60
    assert "never reached" not in result.stdout
    failure = (root / "output" / "failure").read_text()
    assert "host algo-1-nowhere.invalid did not resolve within 2 s" in failure, failure
