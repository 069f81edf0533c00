"""The built-in LightGBM algorithm's serving stack against ours in its layout, on the same
model.pkl; a differential check of their answers; and the same training job in both layouts.

    .venv/bin/python bench/builtin_algorithm.py [--quick] [--repeat K] [--train-rows N]

1. **Differential** (exits 1 on any difference): for a regression, a binary and a multiclass
   Booster (13 features, 100 trees, 31 leaves, joblib'd as ``model.pkl`` beside
   ``__models_info__.json``, as the built-in's training leaves them), the built-in's inference
   script (``examples/builtin_algorithm``: a re-creation from its documented behaviour, with its
   ``constants`` package and the toolkit's encoder) on Multi Model Server + the SageMaker
   Inference Toolkit, and our ``serve`` answering in the built-in's layout with no script:
   1 and 1,000 CSV rows, Accept none, ``application/json`` and ``application/json;verbose``.
   The JSON keys and their order, every shape, and every number (1e-9) must agree, and the
   Content-Type.
2. **Serving**: on the binary model, 2 workers each, rotating rounds, medians: 1 row p50 at 1
   connection, req/s at 8, 1,000 rows (CSV in, the default JSON answer). Targets printed:
   ours >= 3x their req/s, <= 0.4x their 1,000-row latency.
3. **Training**: the same data (``--train-rows`` rows, default 200,000, of 13 features and a
   binary label) trained by our ``train`` in our layout (a train and a validation channel,
   label last) and in the built-in's (a training channel with train/ and validation/, target
   first, categorical_index.json), 100 rounds, no early stopping, median wall time of 3 runs.

MMS, the toolkit and our runtime pins are installed into build/bench-mms on first use (as
bench/user_code.py does). The report goes to stdout and bench/results/builtin_algorithm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import requests

import harness
import measure
import processes
import report
import servers
import user_code
from servers import Server
from workload import Payload

RESULTS_FILE = servers.BENCH_DIR / "results" / "builtin_algorithm.md"
SCRIPT = servers.REPO_DIR / "examples" / "builtin_algorithm"
TRAIN = servers.REPO_DIR / "container" / "program" / "train"
SEED = 25
FEATURES, TREES, LEAVES = 13, 100, 31
ACCEPTS = (None, "application/json", "application/json;verbose")
THEIRS, OURS = "built-in's stack (MMS + toolkit + its inference script)", "ours (built-in layout, compiled trees)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs, fewer 1,000-row requests, 1 training run")
    parser.add_argument("--repeat", type=int, default=3, help="serving rounds; medians over rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    args.duration = 3.0 if args.quick else 8.0
    args.requests_1k = 10 if args.quick else 20
    args.train_runs = 1 if args.quick else 3
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def data(rows: int, objective: str, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)) * np.geomspace(0.1, 100, FEATURES)
    z = x / np.geomspace(0.1, 100, FEATURES)
    score = np.sin(z[:, 0]) * 2 + z[:, 1] * z[:, 2] + z[:, 3:].sum(axis=1) * 0.2 + rng.normal(0, 0.3, rows)
    if objective == "regression":
        return x, score
    if objective == "binary":
        return x, (score > 0).astype(float)
    return x, np.digitize(score, [-0.7, 0.7]).astype(float)


def model_root(tmp: Path, objective: str, with_script: bool) -> Path:
    """The built-in's artifact: model.pkl (a joblib'd Booster) and __models_info__.json; code/ with its script."""
    x, y = data(20_000, objective)
    params = {"objective": objective, "num_leaves": LEAVES, "verbosity": -1, "seed": 1}
    if objective == "multiclass":
        params["num_class"] = 3
    booster = lgb.train(params, lgb.Dataset(x, y), TREES)
    root = tmp / f"{objective}-{'script' if with_script else 'ours'}"
    (root / "model").mkdir(parents=True)
    joblib.dump(booster, root / "model" / "model.pkl")
    (root / "model" / "__models_info__.json").write_text('{"is_trained_on_input_data": true}')
    if with_script:
        shutil.copytree(SCRIPT, root / "model" / "code")
    return root


def payload(tmp: Path, objective: str, rows: int) -> Payload:
    x, _ = data(rows, objective, seed=SEED + rows)
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in x).encode()
    path = tmp / f"{objective}-{rows}.csv"
    path.write_bytes(body)
    return Payload(rows=rows, path=path, body=body)


def start_pair(args: argparse.Namespace, tmp: Path, objective: str, bin_dir: Path) -> dict[str, Server]:
    theirs = user_code.start_mms(bin_dir, model_root(tmp, objective, True), tmp / f"mms-{objective}", args.workers)
    theirs.name = THEIRS
    ours = servers.start_ours(
        servers.DEFAULT_SERVE, model_root(tmp, objective, False), tmp, args.workers, 300, {}, name=f"ours-{objective}"
    )
    ours.name = OURS
    log(f"{objective}: their stack ready in {theirs.ready_seconds:.1f} s, ours in {ours.ready_seconds:.1f} s")
    return {THEIRS: theirs, OURS: ours}


def differences(objective: str, started: dict[str, Server], bodies: list[Payload]) -> list[str]:
    """What differs between the two answers of every request (empty: nothing)."""
    found = []
    for body in bodies:
        for accept in ACCEPTS:
            headers = {"Content-Type": "text/csv", **({"Accept": accept} if accept else {})}
            answers = {
                name: requests.post(server.invocations_url, data=body.body, headers=headers, timeout=60)
                for name, server in started.items()
            }
            case = f"{objective}, {body.rows} row(s), Accept {accept}"
            theirs, ours = answers[THEIRS], answers[OURS]
            if theirs.status_code != 200 or ours.status_code != 200:
                found.append(f"{case}: status {theirs.status_code} (theirs) / {ours.status_code} (ours)")
                continue
            if theirs.headers.get("Content-Type") != ours.headers.get("Content-Type"):
                found.append(
                    f"{case}: Content-Type {theirs.headers.get('Content-Type')} / {ours.headers.get('Content-Type')}"
                )
            a, b = theirs.json(), ours.json()
            if list(a) != list(b):
                found.append(f"{case}: keys {list(a)} / {list(b)}")
                continue
            for key in a:
                x, y = np.asarray(a[key], dtype=float), np.asarray(b[key], dtype=float)
                if x.shape != y.shape:
                    found.append(f"{case}: {key} shape {x.shape} / {y.shape}")
                elif np.abs(x - y).max(initial=0.0) > 1e-9:
                    found.append(f"{case}: {key} differs by {np.abs(x - y).max():.3g}")
    return found


def json_answers(response: requests.Response) -> int:
    answer = response.json()
    return len(answer["probabilities"] if "probabilities" in answer else answer["prediction"])


def measure_rounds(args: argparse.Namespace, started: dict[str, Server], script: Path, rows_1k: Payload) -> dict:
    samples: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in started}
    names = list(started)
    for round_index in range(args.repeat):
        for name in names[round_index % 2 :] + names[: round_index % 2]:
            url = started[name].invocations_url
            c1 = measure.run_wrk(url, script, connections=1, threads=1, duration_s=args.duration)
            c8 = measure.run_wrk(url, script, connections=8, threads=2, duration_s=args.duration)
            thousand = measure.median_latency_s(url, rows_1k, args.requests_1k, answers=json_answers)
            figures = {"p50_c1_ms": c1.p50_ms, "rps_c8": c8.requests_per_second, "rows_1k_ms": thousand * 1e3}
            log(f"round {round_index + 1}: {name}: " + ", ".join(f"{k} {v:,.3f}" for k, v in figures.items()))
            for metric, value in figures.items():
                samples[name][metric].append(value)
    return {name: {k: statistics.median(v) for k, v in metrics.items()} for name, metrics in samples.items()}


# --------------------------------------------------------------------------- training


def training_root(tmp: Path, layout: str, rows: int) -> Path:
    """The same rows as a job in our layout (train + validation channels, label last) or the
    built-in's (a training channel with train/ and validation/, target first, categorical index)."""
    x, y = data(rows, "binary", seed=SEED + 7)
    split = rows * 4 // 5
    root = tmp / f"train-{layout}"
    if layout == "ours":
        table, parts = np.column_stack([x, y]), {"train": slice(0, split), "validation": slice(split, rows)}
        hyperparameters = {"objective": "binary", "num_boost_round": "100"}
    else:
        table = np.column_stack([y, x])
        parts = {"training/train": slice(0, split), "training/validation": slice(split, rows)}
        hyperparameters = {"num_boost_round": "100", "early_stopping_rounds": "0", "use_dask": "False"}
    for directory, part in parts.items():
        (root / "input" / "data" / directory).mkdir(parents=True)
        np.savetxt(root / "input" / "data" / directory / "data.csv", table[part], delimiter=",", fmt="%.8g")
    if layout != "ours":
        (root / "input" / "data" / "training" / "categorical_index.json").write_text('{"cat_index_list": []}')
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    return root


def train_seconds(root: Path) -> float:
    shutil.rmtree(root / "model", ignore_errors=True)
    shutil.rmtree(root / "output", ignore_errors=True)
    env = {
        **os.environ,
        "PATH": servers.venv_path(),
        "SAGEMAKER_BASE_DIR": str(root),
        "LIGHTGBM_COMPILE_AHEAD": "false",
    }
    started = time.monotonic()
    result = subprocess.run([str(TRAIN)], env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise measure.BenchmarkError(f"train failed in {root}: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def training(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    roots = {layout: training_root(tmp, layout, args.train_rows) for layout in ("ours", "built-in")}
    samples: dict[str, list[float]] = defaultdict(list)
    for run in range(args.train_runs):
        for layout in list(roots)[run % 2 :] + list(roots)[: run % 2]:
            samples[layout].append(train_seconds(roots[layout]))
            log(f"training run {run + 1}: {layout} layout {samples[layout][-1]:.2f} s")
    return {layout: statistics.median(values) for layout, values in samples.items()}


# --------------------------------------------------------------------------- report


def render(args: argparse.Namespace, compared: int, medians: dict, trained: dict[str, float] | None) -> str:
    theirs, ours = medians[THEIRS], medians[OURS]
    lines = [
        "# The built-in LightGBM algorithm's stack against ours in its layout (same model.pkl)",
        "",
        f"- machine: {report.machine_summary()}",
        f"- differential: {compared} answers compared (regression, binary, multiclass; 1 and 1,000 rows; "
        "Accept none, application/json, application/json;verbose): identical keys, shapes, Content-Type, numbers within 1e-9",
        f"- serving: binary Booster, {FEATURES} features, {TREES} trees, {LEAVES} leaves; {args.workers} workers each; "
        f"{args.repeat} rotating rounds, medians; wrk {args.duration:g} s per run; {args.requests_1k} × 1,000 rows",
        "",
        "| server | 1 row p50, 1 conn (ms) | 1 row req/s, 8 conn | 1,000 rows (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in medians.items():
        lines.append(
            f"| {name} | {figures['p50_c1_ms']:.3f} | {figures['rps_c8']:,.0f} | {figures['rows_1k_ms']:.2f} |"
        )
    lines += [
        "",
        f"ours against theirs: req/s {ours['rps_c8'] / theirs['rps_c8']:.2f}× (target ≥ 3×), "
        f"1,000 rows {ours['rows_1k_ms'] / theirs['rows_1k_ms']:.2f}× (target ≤ 0.4×), "
        f"p50 {ours['p50_c1_ms'] / theirs['p50_c1_ms']:.2f}×.",
    ]
    if trained:
        lines += [
            "",
            f"Training, the same {args.train_rows:,} rows × {FEATURES} features (binary, 100 rounds), our `train`, "
            f"median of {args.train_runs}: our layout {trained['ours']:.2f} s, the built-in's layout "
            f"{trained['built-in']:.2f} s ({trained['built-in'] / trained['ours']:.2f}×).",
        ]
    return "\n".join(lines) + "\n"


def measured_report(args: argparse.Namespace, tmp: Path) -> str:
    """Everything this benchmark measures, in ``tmp``, as its report."""
    bin_dir = user_code.ensure_mms()
    compared, found = 0, []
    for objective in ("regression", "multiclass", "binary"):  # binary last: it stays up to be measured
        started = start_pair(args, tmp, objective, bin_dir)
        bodies = [payload(tmp, objective, 1), payload(tmp, objective, 1_000)]
        found += differences(objective, started, bodies)
        compared += len(bodies) * len(ACCEPTS)
        if objective != "binary":
            for server in started.values():
                for process in reversed(server.processes):
                    process.stop()
    if found:
        raise measure.BenchmarkError("answers differ:\n  " + "\n  ".join(found))
    log(f"differential: {compared} answers compared, none differs")
    single = payload(tmp, "binary", 1)
    script = measure.write_wrk_script(single, tmp, name="binary-1.lua")
    for server in started.values():  # warm every worker
        measure.run_wrk(server.invocations_url, script, connections=8, threads=2, duration_s=1)
    medians = measure_rounds(args, started, script, payload(tmp, "binary", 1_000))
    processes.stop_all()
    trained = None if args.skip_training else training(args, tmp)
    return render(args, compared, medians, trained)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run("lgbm-bench-builtin-", args.output, lambda tmp: measured_report(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
