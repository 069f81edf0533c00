"""The benchmark's model and request bodies, generated fresh in a temporary ML root.

The model shape (13 features, 100 trees, 31 leaves) is the one DESIGN.md section 7
was measured with, so the figures stay comparable across runs and machines. The data
come from a seeded generator: every run scores the same model on the same rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import lightgbm
import numpy as np

N_FEATURES = 13
N_TREES = 100
NUM_LEAVES = 31
TRAIN_ROWS = 20_000
SEED = 20_240_601
PAYLOAD_ROWS = (1, 1_000, 100_000)


@dataclass(frozen=True)
class Payload:
    """One request body as SageMaker's CSVSerializer would send it."""

    rows: int
    path: Path
    body: bytes

    @property
    def features(self) -> np.ndarray:
        """The values the server really sees: parsed back from the %.6g text, not the originals."""
        return np.loadtxt(io.StringIO(self.body.decode()), delimiter=",", ndmin=2)


@dataclass(frozen=True)
class Workload:
    """Everything the benchmark sends and compares against."""

    root: Path
    model_file: Path
    booster: lightgbm.Booster
    payloads: dict[int, Payload]


def _features(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Columns of different scales, so the CSV text looks like real tabular data."""
    scales = np.geomspace(0.01, 1_000.0, N_FEATURES)
    return rng.normal(size=(rows, N_FEATURES)) * scales


def _target(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A non-linear target, so all 100 trees find splits and none stops early."""
    z = x / np.geomspace(0.01, 1_000.0, N_FEATURES)
    signal = np.sin(z[:, 0]) * 3 + z[:, 1] * z[:, 2] + np.abs(z[:, 3]) + (z[:, 4] > 0.5) * 2 + z[:, 5:].sum(axis=1)
    return signal + rng.normal(scale=0.3, size=len(x))


def train_model(model_dir: Path, rng: np.random.Generator) -> tuple[Path, lightgbm.Booster]:
    """Train and save with plain `save_model`, the format every LightGBM user produces."""
    x = _features(rng, TRAIN_ROWS)
    params = {"objective": "regression", "num_leaves": NUM_LEAVES, "learning_rate": 0.1, "seed": SEED, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, _target(x, rng)), num_boost_round=N_TREES)
    if booster.num_trees() != N_TREES:
        raise RuntimeError(f"expected {N_TREES} trees, training produced {booster.num_trees()}")
    model_dir.mkdir(parents=True, exist_ok=True)
    model_file = model_dir / "model.txt"
    booster.save_model(str(model_file))
    return model_file, booster


def csv_body(x: np.ndarray) -> bytes:
    """Rows joined by "\\n", no header, no label, no trailing newline (CSVSerializer's format)."""
    text = io.StringIO()
    np.savetxt(text, x, fmt="%.6g", delimiter=",", newline="\n")
    return text.getvalue().rstrip("\n").encode()


def write_payloads(
    payload_dir: Path, rng: np.random.Generator, row_counts: tuple[int, ...] = PAYLOAD_ROWS
) -> dict[int, Payload]:
    """Write each body to a file too: wrk's Lua script reads the single-row body from disk."""
    payload_dir.mkdir(parents=True, exist_ok=True)
    payloads: dict[int, Payload] = {}
    for rows in row_counts:
        body = csv_body(_features(rng, rows))
        path = payload_dir / f"rows_{rows}.csv"
        path.write_bytes(body)
        payloads[rows] = Payload(rows=rows, path=path, body=body)
    return payloads


def build_workload(root: Path, payload_dir: Path) -> Workload:
    """Lay out `<root>/model/model.txt` (SageMaker's model directory) and the payloads."""
    rng = np.random.default_rng(SEED)
    model_file, booster = train_model(root / "model", rng)
    payloads = write_payloads(payload_dir, rng)
    return Workload(root=root, model_file=model_file, booster=booster, payloads=payloads)
