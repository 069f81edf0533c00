"""What a training job leaves in ``/opt/ml/model``: ``model.txt`` and ``metadata.json``, written atomically."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..model.files import METADATA_FILE, MODEL_FILE
from .channels import Table
from .hyperparameters import TrainingConfig

#: Set per host by distributed training: not the user's hyperparameters, left out of metadata.json.
NETWORK_PARAMS = ("machines", "num_machines", "local_listen_port", "pre_partition")
TRAIN_CHANNEL, VALIDATION_CHANNEL = "train", "validation"


def _metrics(booster: Any) -> dict[str, dict[str, float]]:
    return {data: {name: float(value) for name, value in scores.items()} for data, scores in booster.best_score.items()}


def build_metadata(
    booster: Any,
    params: dict[str, Any],
    kind: str,
    classes: Any,
    config: TrainingConfig,
    train: Table,
    validation: Table | None,
) -> dict[str, Any]:
    import lightgbm as lgb  # noqa: PLC0415 - LightGBM is loaded by then; this reads its version

    return {
        "format_version": 1,
        "model_file": MODEL_FILE,
        "objective": str(params["objective"]),
        "output": kind,
        "num_class": int(params.get("num_class", 1)),
        "classes": classes,
        "feature_names": train.feature_names,
        "categorical_features": train.categorical,
        "categories": train.categories,  # text categories in code order: serving maps request strings with them
        "label": {"index": train.label_index, "name": train.label_name},
        "best_iteration": int(booster.best_iteration or booster.current_iteration()),
        "num_trees": int(booster.num_trees()),
        "num_boost_round": config.num_boost_round,
        "early_stopping_rounds": config.early_stopping_rounds,
        "metrics": _metrics(booster),
        "hyperparameters": {k: v for k, v in params.items() if k != "verbosity" and k not in NETWORK_PARAMS},
        "rows": {TRAIN_CHANNEL: train.rows, VALIDATION_CHANNEL: validation.rows if validation else 0},
        "versions": {
            "lightgbm": lgb.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "container": __version__,
        },
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_model(model_dir: Path, booster: Any, metadata: dict[str, Any]) -> None:
    """Write to temporary files, then rename: a reader never sees a half-written model."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staged_model = model_dir / f".{MODEL_FILE}.{os.getpid()}.tmp"
    staged_metadata = model_dir / f".{METADATA_FILE}.{os.getpid()}.tmp"
    booster.save_model(str(staged_model))
    staged_metadata.write_text(json.dumps(metadata, indent=2) + "\n")
    for staged in (staged_model, staged_metadata):
        with staged.open("rb") as handle:
            os.fsync(handle.fileno())
    (model_dir / METADATA_FILE).unlink(missing_ok=True)  # never pair a new model with old metadata
    os.replace(staged_model, model_dir / MODEL_FILE)
    os.replace(staged_metadata, model_dir / METADATA_FILE)
