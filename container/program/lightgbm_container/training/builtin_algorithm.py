"""Jobs of SageMaker's built-in LightGBM algorithm, run unchanged: its channels, files,
hyperparameters, log lines and model file.

The built-in (JumpStart's ``lightgbm-classification-model`` / ``lightgbm-regression-model``,
training script v2.2.0) reads a ``train`` or ``training`` channel (with ``train/`` and
``validation/`` sub-folders, or a ``validation`` channel, or neither: it then holds out a seeded
20 % of the rows), CSV without a header and the target in the **first** column, and
``categorical_index.json`` (any one ``*.json`` in the channel's root) listing categorical
columns counted with the target as column 0. Where its documentation and its scripts
disagree, this follows the scripts (README: "Coming from the built-in LightGBM algorithm").

Which conventions a job follows is never guessed from the numbers in a file: the built-in's
are chosen by ``LIGHTGBM_CONVENTIONS=builtin-algorithm``, or for a job that is recognisably
one of theirs (a ``training`` channel, the hyperparameter ``use_dask`` that only the built-in
has and its SDK always sends, or a ``*.json`` beside the train channel's data); ours otherwise.
The log says which, and why.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TrainingError
from ..model.conventions import BUILTIN_ALGORITHM, BUILTIN_MODEL_FILE, MODELS_INFO
from ..settings import MLPaths
from .hyperparameters import lightgbm_aliases

log = logging.getLogger("train")

OURS = "ours"
TRAINING_CHANNEL = "training"  # the built-in's name for the train channel (ours is "train", which it takes too)
#: The built-in holds out this fraction of the training rows when it has no validation data,
#: chosen as ``DataFrame.sample(frac=0.2, random_state=200)`` chooses them.
HOLDOUT_FRACTION, HOLDOUT_SEED = 0.2, 200
#: The hyperparameter only the built-in has: its SDK sends it with every job (retrieve_default).
USE_DASK = "use_dask"

#: The training script's own defaults (its argparse), used for a hyperparameter the job leaves
#: out. The documentation's table gives others (100 rounds, learning_rate 0.1, 64 leaves, ...)
#: and the SDK's ``retrieve_default`` sends a third set explicitly (5000 rounds, 0.009, 67 leaves,
#: ...): a job that sends its hyperparameters gets exactly those, as on the built-in.
SCRIPT_DEFAULTS: dict[str, Any] = {
    "num_boost_round": 20,
    "early_stopping_rounds": 5,
    "learning_rate": 0.01,
    "num_leaves": 31,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 5,
    "max_depth": 12,
    "min_data_in_leaf": 26,
    "max_delta_step": 0.0,
    "lambda_l1": 0.0,
    "lambda_l2": 0.0,
    "boosting": "gbdt",
    "min_gain_to_split": 0.0,
    "tree_learner": "serial",
    "feature_fraction_bynode": 1.0,
    "is_unbalance": False,
    "max_bin": 255,
    "num_threads": 0,
    "verbosity": 1,
}
#: By problem type, as the classification and regression scripts differ.
CLASSIFICATION_DEFAULTS = {"scale_pos_weight": 1.0}
REGRESSION_DEFAULTS = {"tweedie_variance_power": 1.5}
AUTO_METRIC = {"regression": "rmse", "binary": "binary_logloss", "multiclass": "multi_logloss"}


@dataclass(frozen=True)
class Conventions:
    name: str  # BUILTIN_ALGORITHM or OURS
    reason: str

    @property
    def builtin(self) -> bool:
        return self.name == BUILTIN_ALGORITHM


def choose(setting: str, present: Callable[[str], bool], paths: MLPaths, raw: Mapping[str, Any]) -> Conventions:
    """Whose conventions the job follows, and why (``setting``: LIGHTGBM_CONVENTIONS)."""
    if setting != "auto":
        return Conventions(setting, f"LIGHTGBM_CONVENTIONS={setting}")
    if present(TRAINING_CHANNEL):
        return Conventions(BUILTIN_ALGORITHM, "the job has a 'training' channel, the built-in algorithm's name for it")
    if USE_DASK in raw:
        return Conventions(BUILTIN_ALGORITHM, "the hyperparameter use_dask, which only the built-in algorithm has")
    index_files = sorted(paths.channel("train").glob("*.json")) if present("train") else []
    if index_files:
        return Conventions(BUILTIN_ALGORITHM, f"train/{index_files[0].name} beside the data (a categorical index)")
    return Conventions(OURS, "none of the built-in algorithm's marks (a 'training' channel, use_dask, a *.json index)")


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class Layout:
    """Where a built-in job's data is: the directories to read and the names to show for them."""

    channel: str  # "train" or "training": whose ContentType and input mode apply
    train_dir: Path
    train_name: str  # "training/train", "training", "train"
    validation_dir: Path | None
    validation_name: str | None
    index_file: Path | None  # categorical_index.json


def layout(paths: MLPaths, present: Callable[[str], bool]) -> Layout:
    """The built-in's three layouts: a validation channel; ``train/`` (and maybe ``validation/``)
    inside the train channel; or the train channel alone (a holdout is taken later)."""
    if present("train") and present(TRAINING_CHANNEL):
        raise TrainingError(
            "both a 'train' and a 'training' channel were given; the built-in algorithm's layout takes one of them"
        )
    channel = TRAINING_CHANNEL if present(TRAINING_CHANNEL) else "train"
    root = paths.channel(channel)
    index_files = sorted(root.glob("*.json")) if root.is_dir() else []
    if len(index_files) > 1:
        raise TrainingError(
            f"{channel} has {len(index_files)} JSON files ({', '.join(p.name for p in index_files[:5])}); "
            "the categorical index must be the only one (categorical_index.json)"
        )
    index_file = index_files[0] if index_files else None
    if present("validation"):
        return Layout(channel, root, channel, paths.channel("validation"), "validation", index_file)
    if (root / "train").is_dir():
        validation = root / "validation"
        if validation.is_dir():
            return Layout(channel, root / "train", f"{channel}/train", validation, f"{channel}/validation", index_file)
        return Layout(channel, root / "train", f"{channel}/train", None, None, index_file)
    return Layout(channel, root, channel, None, None, index_file)


def categorical_positions(index_file: Path, features: int) -> tuple[int, ...]:
    """``{"cat_index_list": [1, 4]}`` (any key: the first value is the list; columns counted with the
    target as 0) -> feature positions (0-based, the target not counted) for ``categorical_feature``."""
    try:
        document = json.loads(index_file.read_text())
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{index_file.name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not document:
        raise TrainingError(f'{index_file.name} must be an object such as {{"cat_index_list": [1, 4]}}')
    indices = next(iter(document.values()))
    if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise TrainingError(
            f"{index_file.name}: {indices!r} must be a list of column numbers from 1 to {features} "
            "(the target is column 0)"
        )
    outside = [i for i in indices if not 1 <= i <= features]
    if outside:
        raise TrainingError(
            f"{index_file.name}: column {outside[0]} is outside 1-{features}; "
            f"the data has {features} features after the target (column 0)"
        )
    return tuple(i - 1 for i in indices)


def holdout_rows(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) as the built-in splits: ``df.sample(frac=0.2,
    random_state=200)`` picks the validation rows (in its order), the rest train in their order."""
    import pandas as pd  # noqa: PLC0415 - pandas' own sampling, so the rows are the built-in's

    validation = pd.Series(np.arange(rows)).sample(frac=HOLDOUT_FRACTION, random_state=HOLDOUT_SEED).to_numpy()
    keep = np.ones(rows, dtype=bool)
    keep[validation] = False
    return np.flatnonzero(keep), validation


# --------------------------------------------------------------------------- hyperparameters and problem


def hyperparameters(raw: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the job's hyperparameters over the script's defaults, without ``use_dask`` and ``metric=auto``;
    whether ``use_dask`` was asked for). Defaults that depend on the problem come with :func:`problem`."""
    given = dict(raw)
    use_dask = str(given.pop(USE_DASK, "False")).strip().strip('"').lower() == "true"
    aliases = lightgbm_aliases()
    named = {aliases.get(name, name) for name in given}  # learning_rate given as eta is given
    merged: dict[str, Any] = {
        name: value for name, value in SCRIPT_DEFAULTS.items() if aliases.get(name, name) not in named
    }
    merged.update(given)
    if str(merged.get("metric", "auto")).strip().strip('"').lower() == "auto":
        merged.pop("metric", None)
    rounds = merged.get("early_stopping_rounds")
    try:
        disabled = int(float(str(rounds).strip('"'))) <= 0
    except ValueError:
        disabled = False  # our parser names the bad value
    if disabled:  # the built-in ignores early_stopping_rounds <= 0
        merged.pop("early_stopping_rounds")
    return merged, use_dask


@dataclass(frozen=True)
class Problem:
    objective: str
    num_class: int | None
    reason: str


def problem(labels: np.ndarray, params: Mapping[str, Any]) -> Problem:
    """The problem type as the built-in decides it from the labels: two values -> binary; the
    values 0..K-1 with K >= 3 -> multiclass (LightGBM's multiclass needs exactly those);
    anything else -> regression. An ``objective`` hyperparameter decides instead."""
    if "objective" in params:
        return Problem(str(params["objective"]), None, f"the hyperparameter objective={params['objective']}")
    if labels.dtype == object:
        values = np.unique(labels.astype(str))
        numbers = None
    else:
        values = np.unique(labels)
        numbers = values
    if len(values) == 2:
        return Problem("binary", None, f"the label has two values ({_shown(values[0])}, {_shown(values[1])})")
    if numbers is not None and len(values) >= 3 and np.array_equal(numbers, np.arange(len(values))):
        return Problem("multiclass", len(values), f"the label's values are 0-{len(values) - 1}")
    if numbers is None:
        return Problem(
            "multiclass", len(values), f"the label is text with {len(values)} values (the built-in needs 0..K-1)"
        )
    return Problem("regression", None, f"the label has {len(values)} values, not two and not 0..K-1")


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def problem_defaults(objective: str) -> dict[str, Any]:
    return REGRESSION_DEFAULTS if objective == "regression" else CLASSIFICATION_DEFAULTS


def auto_metric(objective: str) -> str:
    return AUTO_METRIC.get(objective, AUTO_METRIC["regression"])


# --------------------------------------------------------------------------- a starting model


#: The built-in's ``model`` channel: JumpStart's starting artifact, a model.tar.gz.
MODEL_CHANNEL = "model"
MAX_STARTING_MODEL_BYTES = 8 * 1024**3


def starting_model(channel_dir: Path, scratch: Path) -> Any | None:
    """The Booster a built-in job continues from (incremental training), or None.

    As the built-in's script: the first ``*.tar.gz`` in the ``model`` channel is extracted; when
    its ``__models_info__.json`` says ``"is_trained_on_input_data": true``, its ``model.pkl``
    (a joblib'd Booster) is where training starts; otherwise training starts from scratch."""
    from ..safe_tar import extract_archive  # noqa: PLC0415 - only a job with a model channel

    archives = sorted(channel_dir.glob("*.tar.gz"))
    if not archives:
        log.info("channel 'model' has no *.tar.gz: training starts from scratch")
        return None
    try:
        extracted = extract_archive(archives[0], scratch, MAX_STARTING_MODEL_BYTES)
    except Exception as exc:  # noqa: BLE001 - a BadRequest or an OSError from a damaged archive: say which
        raise TrainingError(f"channel 'model': {archives[0].name} cannot be extracted: {exc}") from None
    info_file = extracted / MODELS_INFO
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    if not (isinstance(info, dict) and info.get("is_trained_on_input_data") is True):
        log.info(
            "channel 'model': %s holds no trained model (%s): training starts from scratch",
            archives[0].name,
            MODELS_INFO,
        )
        return None
    import joblib  # noqa: PLC0415 - see above
    import lightgbm as lgb  # noqa: PLC0415 - loaded already by a built-in fit

    model_file = extracted / BUILTIN_MODEL_FILE
    try:
        booster = joblib.load(model_file)
    except Exception as exc:  # noqa: BLE001 - anything unpickling raises is the file's problem
        raise TrainingError(
            f"channel 'model': {archives[0].name}'s {BUILTIN_MODEL_FILE} cannot be loaded: {exc}"
        ) from None
    if not isinstance(booster, lgb.Booster):
        raise TrainingError(
            f"channel 'model': {archives[0].name}'s {BUILTIN_MODEL_FILE} holds a {type(booster).__name__}, "
            "not the lightgbm.Booster the built-in algorithm continues training from"
        )
    log.info(
        "channel 'model': training continues from %s's %s (%d trees)",
        archives[0].name,
        BUILTIN_MODEL_FILE,
        booster.num_trees(),
    )
    return booster


# --------------------------------------------------------------------------- what a built-in job leaves


def write_builtin_files(model_dir: Path, booster: Any) -> None:
    """Beside model.txt: ``model.pkl`` (the joblib'd Booster the built-in's users ``joblib.load``,
    its best iteration kept as theirs) and ``__models_info__.json`` (what the built-in writes)."""
    import joblib  # noqa: PLC0415 - only a built-in job writes a pickle

    staged = model_dir / f".{BUILTIN_MODEL_FILE}.{os.getpid()}.tmp"
    joblib.dump(booster, staged)
    os.replace(staged, model_dir / BUILTIN_MODEL_FILE)
    (model_dir / MODELS_INFO).write_text(json.dumps({"is_trained_on_input_data": True}) + "\n")
