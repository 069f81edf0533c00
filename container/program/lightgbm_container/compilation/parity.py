"""The parity check: a compiled model is only used when it agrees with LightGBM.

We predict a sample of rows spread over each feature's training range (with missing
values, and the seen categories of categorical features) with both, and accept the
compiled trees only if every output matches to 1e-9. Used for a fresh compile, for an
object shipped in the model directory, and for a Booster a user's ``model_fn`` loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TOLERANCE = 1e-9
_CHECK_ROWS = 512


def _sample_rows(booster: Any, rows: int) -> np.ndarray:
    """Rows spread over each feature's training range (from the model), with some missing values."""
    rng = np.random.default_rng(0)
    infos = booster.dump_model(num_iteration=1).get("feature_infos", {})
    columns = []
    for name in booster.feature_name():
        info = infos.get(name, {})
        low, high = info.get("min_value", -3.0), info.get("max_value", 3.0)
        if info.get("values"):  # categorical: draw from the seen categories
            column = rng.choice(np.asarray(info["values"], dtype=np.float64), size=rows)
        else:
            column = rng.uniform(low, high if high > low else low + 1.0, size=rows)
        column[rng.random(rows) < 0.1] = np.nan
        columns.append(column)
    return np.column_stack(columns) if columns else np.zeros((rows, 0))


def disagreement(booster: Any, predict: Callable[[np.ndarray], np.ndarray]) -> float | None:
    """None when ``predict`` agrees with ``booster`` to 1e-9 on sample rows, else the largest difference.

    The one parity check: for a freshly compiled model, and for a Booster that user code
    loaded itself before it is served by the compiled trees."""
    rows = _sample_rows(booster, _CHECK_ROWS)
    expected = booster.predict(rows, num_threads=1)
    got = np.asarray(predict(rows), dtype=np.float64)
    if expected.shape != got.shape:
        return float("nan")
    if np.allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True):
        return None
    return float(np.nanmax(np.abs(got - expected)))
