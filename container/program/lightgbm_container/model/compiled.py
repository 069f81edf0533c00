"""Ahead-of-time compilation of a model with lleaves, cached by model and CPU.

lleaves turns the trees into native code (3-4x faster than ``Booster.predict`` here) but
compiling takes seconds (minutes for large forests). ``serve`` therefore compiles once,
before the workers start, in a child process with a time limit, and caches the object by
(model bytes, lleaves version, CPU): the next start, or every worker, just loads it.

A compiled model is only used when it agrees with LightGBM: after compiling we predict a
sample of rows with both and keep the object only if every output matches to 1e-9.
Anything unexpected leaves LightGBM's own predictor in charge; serving never depends on it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

TOLERANCE = 1e-9
_CHECK_ROWS = 512


def _cpu_signature() -> str:
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features().flatten()
    return f"{llvm.get_host_cpu_name()}:{hashlib.sha256(features.encode()).hexdigest()[:12]}"


def cache_path(model_file: Path, cache_dir: Path) -> Path:
    """Where the compiled object for this model on this CPU lives (whether or not it exists yet)."""
    digest = hashlib.sha256()
    digest.update(model_file.read_bytes())
    digest.update(package_metadata.version("lleaves").encode())
    digest.update(_cpu_signature().encode())
    return cache_dir / f"{digest.hexdigest()[:32]}.o"


def _sample_rows(booster, rows: int) -> np.ndarray:
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


def compile_and_check(model_file: Path, target: Path) -> str:
    """Compile ``model_file`` to ``target`` if it agrees with LightGBM; returns what happened."""
    import lightgbm
    import lleaves

    if target.exists():
        return f"cached {target}"
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        scratch_object = Path(scratch) / "model.o"
        compiled = lleaves.Model(model_file=str(model_file))
        compiled.compile(cache=str(scratch_object))
        booster = lightgbm.Booster(model_file=str(model_file))
        difference = disagreement(booster, lambda rows: compiled.predict(rows, n_jobs=1))
        if difference is not None:
            return f"rejected: compiled predictions differ from LightGBM (max difference {difference:.3g})"
        os.replace(scratch_object, target)  # atomic: a reader sees no object or a whole one
    return f"compiled in {time.monotonic() - started:.1f}s to {target}"


def ensure_compiled(model_file: Path, cache_dir: Path, timeout_seconds: int) -> Path | None:
    """Compile in a child process (bounded in time, and keeping OpenMP out of the caller).

    Returns the object's path, or None when compilation failed, timed out or disagreed.
    """
    try:
        target = cache_path(model_file, cache_dir)
    except Exception:
        log.exception("lleaves is unavailable; predicting with LightGBM")
        return None
    if target.exists():
        log.info("compiled model: cached %s", target)
        return target
    log.info("compiling %s with lleaves (at most %ds)...", model_file, timeout_seconds)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lightgbm_container.model.compiled", str(model_file), str(target)],
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            cwd=Path(__file__).resolve().parents[2],
        )
    except subprocess.TimeoutExpired:
        log.warning("compiling took longer than %ds; predicting with LightGBM", timeout_seconds)
        return None
    message = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode != 0 or not target.exists():
        log.warning("not using the compiled model (%s); predicting with LightGBM", message or result.stderr.strip()[-500:])
        return None
    log.info("compiled model: %s", message)
    return target


if __name__ == "__main__":
    print(compile_and_check(Path(sys.argv[1]), Path(sys.argv[2])))
