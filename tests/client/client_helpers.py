"""Helpers for the client tier (not named conftest/support: other tiers own those names)."""

from __future__ import annotations

import tarfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "local_test" / "test_dir" / "input" / "data"
TRAIN = DATA / "train"
VALIDATION = DATA / "validation"

#: local_test/test_dir's hyperparameters (the SDK turns every value into a string).
HYPERPARAMETERS = {
    "objective": "regression",
    "num_boost_round": 300,
    "early_stopping_rounds": 20,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 10,
    "metric": "rmse",
}


def read_rows(path: Path) -> np.ndarray:
    """A headerless numeric CSV file as a 2-D float array."""
    return np.loadtxt(path, delimiter=",", ndmin=2)


def features(path: Path) -> np.ndarray:
    """The feature columns of a SageMaker-layout CSV file (label last)."""
    return read_rows(path)[:, :-1]


def local_path(uri: str) -> Path:
    """file:///a/b -> Path('/a/b')."""
    parsed = urlparse(uri)
    assert parsed.scheme == "file", f"expected a file:// URI, got {uri}"
    return Path(parsed.netloc + parsed.path)


def extract_model(model_data: str, dest: Path) -> Path:
    """Unpack the estimator's model.tar.gz into dest; returns the directory."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(local_path(model_data)) as tar:
        tar.extractall(
            dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {})
        )  # Debian 3.11.2 lacks filters
    return dest


def csv_lines(text: str) -> list[str]:
    """Records of a CSV answer or transform output, one per line (trailing newlines dropped)."""
    return text.rstrip("\n").split("\n")
