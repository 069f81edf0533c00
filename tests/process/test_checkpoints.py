"""Checkpoints with the real ``train``: a job killed mid-training (SIGKILL) and started again
finishes its rounds from the last checkpoint and predicts like an uninterrupted run; SIGTERM
saves one before the job exits; a checkpoint of other training is ignored, with the reason.

The data is big enough (20,000 rows, deep trees) that training takes a few seconds, so the
tests can act while it runs: they wait for the log line of a checkpoint, then kill.
"""

import json
import signal
import subprocess

import lightgbm
import numpy as np
import pytest

from support import PROGRAM, program_env

ROUNDS = 300
HYPERPARAMETERS = {
    "num_boost_round": str(ROUNDS),
    "learning_rate": "0.05",
    "num_leaves": "255",
    "min_data_in_leaf": "5",
    "deterministic": "true",
    "force_col_wise": "true",
    "metric": "rmse",
    "checkpoint_rounds": "10",
}
# Trees continued from a checkpoint seed their scores from the saved trees' predictions, which can
# differ from the running sums in the last bits (measured: no difference at all, deterministic=true).
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """20,000 rows x 12 features, label last; written once for the module."""
    rng = np.random.default_rng(7)
    features = rng.normal(size=(20_000, 12))
    label = (
        features[:, 0] * 3 + np.sin(features[:, 1] * 2) + features[:, 2] * features[:, 3] + rng.normal(0, 0.1, 20_000)
    )
    path = tmp_path_factory.mktemp("data") / "train.csv"
    np.savetxt(path, np.column_stack([features, label]), delimiter=",", fmt="%.6f")
    return path, features[:200]


def ml_root(tmp_path, data_file, hyperparameters=HYPERPARAMETERS, checkpoints=True):
    root = tmp_path / "ml"
    (root / "input" / "data" / "train").mkdir(parents=True)
    (root / "input" / "data" / "train" / "train.csv").symlink_to(data_file)
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    if checkpoints:
        (root / "checkpoints").mkdir()
    return root


def start_train(root):
    return subprocess.Popen(
        [str(PROGRAM / "train")],
        env=program_env(root, LIGHTGBM_COMPILE_AHEAD="false"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_until(process, text: str) -> list[str]:
    """The process's lines up to and including the first that contains ``text`` (it keeps running)."""
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if text in line:
            return lines
    pytest.fail(f"the job ended (exit {process.wait()}) before logging {text!r}:\n" + "\n".join(lines[-30:]))


def finish(process, timeout=240) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def predictions(root, rows):
    return lightgbm.Booster(model_file=str(root / "model" / "model.txt")).predict(rows)


def checkpoint_round(root) -> int:
    return json.loads((root / "checkpoints" / "lightgbm-checkpoint.json").read_text())["round"]


def test_a_killed_job_resumes_from_its_checkpoint_and_predicts_like_an_uninterrupted_one(tmp_path, data):
    data_file, rows = data
    uninterrupted = ml_root(tmp_path / "whole", data_file, checkpoints=False)
    code, out = finish(start_train(uninterrupted))
    assert code == 0, out
    assert not (uninterrupted / "checkpoints").exists()

    root = ml_root(tmp_path / "spot", data_file)
    first = start_train(root)
    run_until(first, "checkpoint saved at round 20")
    first.send_signal(signal.SIGKILL)  # no warning, as when an instance disappears
    first.wait(10)
    saved = checkpoint_round(root)
    assert 20 <= saved < ROUNDS, saved
    assert not (root / "model" / "model.txt").exists()

    code, out = finish(start_train(root))
    assert code == 0, out
    assert (
        f"resuming from checkpoint {root / 'checkpoints' / 'lightgbm-checkpoint.json'} at round {saved} of {ROUNDS}"
        in out
    )
    assert f"[{saved + 1}] train-rmse=" in out and f"[{saved}] train-rmse=" not in out  # only the rounds left
    assert "progress: round" in out and "rounds/s" in out
    model = lightgbm.Booster(model_file=str(root / "model" / "model.txt"))
    assert model.current_iteration() == ROUNDS
    difference = np.abs(predictions(root, rows) - predictions(uninterrupted, rows)).max()
    print(f"largest prediction difference, resumed vs uninterrupted: {difference:.3g}")
    assert difference <= TOLERANCE, difference


def test_sigterm_saves_a_checkpoint_and_fails_the_job_with_its_round(tmp_path, data):
    data_file, _ = data
    root = ml_root(tmp_path, data_file, {**HYPERPARAMETERS, "checkpoint_rounds": "1000"})  # none but SIGTERM's
    process = start_train(root)
    run_until(process, "[3] train-rmse=")
    process.send_signal(signal.SIGTERM)
    code, out = finish(process)
    assert code == 143, out
    saved = checkpoint_round(root)
    assert 3 <= saved < ROUNDS
    failure = (root / "output" / "failure").read_text()
    assert "stopped by SIGTERM" in failure and f"checkpoint at round {saved} kept" in failure, failure


def test_a_checkpoint_of_other_training_is_ignored_with_the_reason(tmp_path, data):
    data_file, _ = data
    hyperparameters = {**HYPERPARAMETERS, "num_boost_round": "12"}
    root = ml_root(tmp_path, data_file, hyperparameters)
    code, out = finish(start_train(root))
    assert code == 0 and checkpoint_round(root) == 10, out

    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({**hyperparameters, "learning_rate": "0.1"})
    )
    code, out = finish(start_train(root))
    assert code == 0, out
    assert "hyperparameter learning_rate was 0.05 in the checkpoint and is 0.1 now; training from the start" in out
    assert "[1] train-rmse=" in out

    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({**hyperparameters, "num_boost_round": "15"})
    )
    code, out = finish(start_train(root))  # the checkpoint is now learning_rate 0.1's, at round 10
    assert code == 0 and "ignoring checkpoint" in out and "[1] train-rmse=" in out, out
    code, out = finish(start_train(root))  # asking for more rounds of the same training resumes
    assert code == 0 and "resuming from checkpoint" in out and "at round 10 of 15" in out, out
    assert lightgbm.Booster(model_file=str(root / "model" / "model.txt")).current_iteration() == 15
