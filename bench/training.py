"""Benchmark training at scale: our `train` against the classic sample's training path.

    .venv/bin/python bench/training.py [--rows 1000000] [--features 50] [--rounds 100] [--repeat 1]

On seeded synthetic regression data (label in the first column, no header, as the classic
sample's data; a validation channel of a tenth of the rows), each run is a fresh process:

- classic: the sample's path, ``pandas.read_csv(header=None)`` per channel, label = the
  first column, ``lightgbm.train(params, Dataset(X, y), valid_sets=[...])``, save_model;
- ours: the real ``container/program/train`` on an /opt/ml layout (``label_column=first``,
  ``LOG_FORMAT=json`` so every line, metric lines included, carries its time);
- both again on the same data as Parquet (classic: ``pandas.read_parquet``).

Measured, from the process's start (interpreter and imports included, for both):
loading (until both channels are in memory), first round (until round 1 is done), total
(until the process exits, model written) and peak RSS (``wait4``'s ``ru_maxrss``); plus
the final validation l2 of each, which must agree. Not a test: the targets (peak RSS <= 0.6x
and loading >= 2x faster than classic) are printed beside the figures; the report goes to
stdout and bench/results/training.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "container" / "program" / "train"
sys.path.insert(0, str(REPO / "container" / "program"))
from lightgbm_container.packages import use_training_packages  # noqa: E402

CLASSIC = r"""
import json, sys, time
import lightgbm as lgb
import pandas as pd

kind, train_path, validation_path, rounds, model_path = sys.argv[1:6]
read = (lambda p: pd.read_csv(p, header=None)) if kind == "csv" else pd.read_parquet
train, validation = read(train_path), read(validation_path)
loaded = time.time()
train_y, train_X = train.iloc[:, 0], train.iloc[:, 1:]
validation_y, validation_X = validation.iloc[:, 0], validation.iloc[:, 1:]
first = []
def first_round(env):
    if not first:
        first.append(time.time())
params = {"objective": "regression", "verbosity": -1}
data = lgb.Dataset(train_X, label=train_y)
booster = lgb.train(params, data, num_boost_round=int(rounds), valid_sets=[lgb.Dataset(validation_X, label=validation_y, reference=data)],
                    valid_names=["validation"], callbacks=[first_round])
booster.save_model(model_path)
print(json.dumps({"loaded": loaded, "first_round": first[0], "l2": booster.best_score["validation"]["l2"]}))
"""


@dataclass
class Run:
    loading: float
    first_round: float
    total: float
    peak_mb: float
    l2: float


def make_data(directory: Path, rows: int, features: int, pyarrow) -> dict[str, dict[str, Path]]:
    """{"csv"|"parquet": {"train"|"validation": file}}, label first, values %.6g-like (float32 precision)."""
    rng = np.random.default_rng(42)
    paths: dict[str, dict[str, Path]] = {"csv": {}, "parquet": {}}
    for channel, count in (("train", rows), ("validation", max(rows // 10, 1000))):
        x = rng.normal(size=(count, features)).astype(np.float32).astype(np.float64)
        y = np.sin(x[:, 0]) * 3 + x[:, 1] * x[:, 2] + np.where(x[:, 3] > 0.5, 2.0, 0.0) + 0.1 * x[:, 4:].sum(axis=1)
        y = (y + rng.normal(scale=0.5, size=count)).astype(np.float32).astype(np.float64)
        table = pyarrow.table({f"c{i}": column for i, column in enumerate([y, *x.T])})
        for kind in paths:
            path = directory / kind / channel / f"{channel}.{kind}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "csv":
                pyarrow.csv.write_csv(table, path, pyarrow.csv.WriteOptions(include_header=False))
            else:
                pyarrow.parquet.write_table(table, path)
            paths[kind][channel] = path
    return paths


def _wait(process: subprocess.Popen) -> tuple[float, float]:
    """(exit time, peak RSS in MB) of the child, from wait4. (Linux counts the peak of the
    process that spawned it too, as of the exec: so this process stays small, the data
    being made in a subprocess of its own.)"""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.time(), usage.ru_maxrss / 1024


def run_classic(kind: str, paths: dict[str, Path], rounds: int, work: Path) -> Run:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # pandas.read_parquet needs pyarrow
    started = time.time()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLASSIC,
            kind,
            str(paths["train"]),
            str(paths["validation"]),
            str(rounds),
            str(work / "classic.txt"),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    output = process.stdout.read() if process.stdout else b""
    ended, peak = _wait(process)
    if process.returncode:
        raise SystemExit(f"classic {kind} failed with {process.returncode}")
    result = json.loads(output.decode().strip().splitlines()[-1])
    return Run(result["loaded"] - started, result["first_round"] - started, ended - started, peak, result["l2"])


def run_ours(kind: str, paths: dict[str, Path], rounds: int, work: Path) -> Run:
    root = work / f"ours-{kind}"
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps({"num_boost_round": str(rounds), "label_column": "first"}))
    (config / "inputdataconfig.json").write_text(json.dumps({c: {"TrainingInputMode": "File"} for c in paths}))
    for channel, path in paths.items():
        target = root / "input" / "data" / channel
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).unlink(missing_ok=True)
        (target / path.name).symlink_to(path)
    env = {
        **os.environ,
        "SAGEMAKER_BASE_DIR": str(root),
        "LOG_FORMAT": "json",
        "LIGHTGBM_COMPILE_AHEAD": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    started = time.time()
    process = subprocess.Popen([str(TRAIN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = process.stdout.read().decode() if process.stdout else ""
    ended, peak = _wait(process)
    if process.returncode:
        raise SystemExit(f"our train ({kind}) failed with {process.returncode}:\n{output[-3000:]}")
    loaded = first = None
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        stamp = datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()
        if record["message"].startswith("validation: ") and loaded is None:
            loaded = stamp
        if record["message"].startswith("[1] ") and first is None:
            first = stamp
    if loaded is None or first is None:
        raise SystemExit(f"our train's log lacks the loading or first-round line:\n{output[-3000:]}")
    metadata = json.loads((root / "model" / "metadata.json").read_text())
    return Run(loaded - started, first - started, ended - started, peak, metadata["metrics"]["validation"]["l2"])


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def report(results: dict[str, list[Run]], rows: int, features: int, rounds: int) -> str:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in results[name])

    lines = [
        "# Training benchmark: our `train` vs the classic sample's path",
        "",
        f"- date: {datetime.now().isoformat(timespec='seconds')}; {os.cpu_count()} cores",
        f"- data: {rows:,} rows x {features} features (+ a label; validation {max(rows // 10, 1000):,} rows); "
        f"{rounds} rounds, regression, LightGBM defaults",
        f"- runs: {len(next(iter(results.values())))} per path, median; each a fresh process, times from its start",
        f"- versions: pandas {_version('pandas')} (from 3.1 its read_csv parses a large file on up to 6 cores), "
        f"pyarrow {_version('pyarrow')}, lightgbm {_version('lightgbm')}",
        "",
        "| data | path | loading (s) | first round (s) | total (s) | peak RSS (MB) | validation l2 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in results:
        kind, path = name.split(":")
        lines.append(
            f"| {kind} | {path} | {median(name, 'loading'):.2f} | {median(name, 'first_round'):.2f} | "
            f"{median(name, 'total'):.2f} | {median(name, 'peak_mb'):.0f} | {median(name, 'l2'):.6f} |"
        )
    lines += [
        "",
        "| data | loading: classic/ours (target >= 2x) | peak RSS: ours/classic (target <= 0.6x) | l2 difference |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("csv", "parquet"):
        classic, ours = f"{kind}:classic", f"{kind}:ours"
        speed = median(classic, "loading") / median(ours, "loading")
        memory = median(ours, "peak_mb") / median(classic, "peak_mb")
        difference = abs(median(ours, "l2") - median(classic, "l2"))
        lines.append(
            f"| {kind} | {speed:.2f}x {'✅' if speed >= 2 else '❌'} | {memory:.2f}x {'✅' if memory <= 0.6 else '❌'} | {difference:.2e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "training.md")
    parser.add_argument("--make-data", type=Path, help=argparse.SUPPRESS)  # the subprocess that writes the data
    args = parser.parse_args()
    if not use_training_packages():
        raise SystemExit("pyarrow (the training-only packages) is missing: run scripts/setup_host.sh")
    if args.make_data:
        import pyarrow
        import pyarrow.csv
        import pyarrow.parquet

        print(
            json.dumps(
                {
                    k: {c: str(p) for c, p in v.items()}
                    for k, v in make_data(args.make_data, args.rows, args.features, pyarrow).items()
                }
            )
        )
        return 0

    with tempfile.TemporaryDirectory(prefix="lgbm-train-bench-") as directory:
        work = Path(directory)
        print(f"[bench] writing {args.rows:,} x {args.features} rows as CSV and Parquet ...", flush=True)
        made = subprocess.run(
            [
                sys.executable,
                __file__,
                "--make-data",
                str(work),
                "--rows",
                str(args.rows),
                "--features",
                str(args.features),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        data = {
            k: {c: Path(p) for c, p in v.items()} for k, v in json.loads(made.stdout.strip().splitlines()[-1]).items()
        }
        results: dict[str, list[Run]] = {
            f"{kind}:{path}": [] for kind in ("csv", "parquet") for path in ("classic", "ours")
        }
        for round_ in range(args.repeat):
            for name in results:
                kind, path = name.split(":")
                run = (run_classic if path == "classic" else run_ours)(kind, data[kind], args.rounds, work)
                results[name].append(run)
                print(f"[bench] round {round_ + 1}/{args.repeat} {name}: {run}", flush=True)
    text = report(results, args.rows, args.features, args.rounds)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
