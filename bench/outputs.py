"""Output kinds: what asking for labels, contributions or leaves costs, in one run.

    .venv/bin/python bench/outputs.py [--quick] [--repeat K]

One `serve` (2 workers, compiled trees) with a 100-tree binary model on the benchmark's
features; every choice below is sent as SageMaker sends it (CSV body, CSV answer, the
choice in X-Amzn-SageMaker-Custom-Attributes), and every answer is checked for one line per
record. The default answer (no choice) is the baseline of the same run. Interleaved
rounds, medians. The report goes to stdout and bench/results/outputs.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import lightgbm
import numpy as np

import measure
import processes
import report
import servers
from workload import N_TREES, NUM_LEAVES, SEED, TRAIN_ROWS, _features, _target, write_payloads

RESULTS_FILE = servers.BENCH_DIR / "results" / "outputs.md"
ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
CHOICES = {
    "default answer (no choice)": None,
    "predicted_score": "output=predicted_score",
    "predicted_label": "output=predicted_label",
    "predicted_label,probabilities": "output=predicted_label,probabilities",
    "raw_score": "output=raw_score",
    "contributions": "output=contributions",
    "leaf": "output=leaf",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s wrk runs, 10 x 1,000-row requests (default 5 s, 20)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    args.duration = 2.0 if args.quick else 5.0
    args.requests_1k = 10 if args.quick else 20
    return args


def binary_model(model_dir: Path) -> Path:
    """The benchmark's features and target, thresholded at the median: a 100-tree binary model."""
    rng = np.random.default_rng(SEED)
    x = _features(rng, TRAIN_ROWS)
    y = _target(x, rng)
    params = {"objective": "binary", "num_leaves": NUM_LEAVES, "learning_rate": 0.1, "seed": SEED, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(x, (y > np.median(y)).astype(float)), num_boost_round=N_TREES)
    model_dir.mkdir(parents=True)
    booster.save_model(str(model_dir / "model.txt"))
    return model_dir / "model.txt"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    processes.install_cleanup()
    servers.ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="lgbm-bench-outputs-"))
    binary_model(tmp / "ml" / "model")
    payloads = write_payloads(tmp / "payloads", np.random.default_rng(SEED + 1), (1, 1_000))
    server = servers.start_ours(
        servers.DEFAULT_SERVE, tmp / "ml", tmp, args.workers, 300, {"LIGHTGBM_PREDICTOR": "auto"}
    )
    scripts = {
        name: measure.write_wrk_script(payloads[1], tmp, {ATTRIBUTES: value} if value else None, name=f"choice{i}.lua")
        for i, (name, value) in enumerate(CHOICES.items())
    }
    samples: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in CHOICES}
    try:
        for name, value in CHOICES.items():  # warm up, and check one line per record for every choice
            measure.median_latency_s(server.invocations_url, payloads[1_000], 1, {ATTRIBUTES: value} if value else None)
        for round_index in range(args.repeat):
            names = list(CHOICES)
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                headers = {ATTRIBUTES: CHOICES[name]} if CHOICES[name] else None
                c1 = measure.run_wrk(
                    server.invocations_url, scripts[name], connections=1, threads=1, duration_s=args.duration
                )
                rows = measure.median_latency_s(server.invocations_url, payloads[1_000], args.requests_1k, headers)
                samples[name]["p50"].append(c1.p50_ms)
                samples[name]["rps_c1"].append(c1.requests_per_second)
                samples[name]["rows_1k"].append(rows * 1e3)
                print(
                    f"[bench] round {round_index + 1}: {name}: p50 {c1.p50_ms:.3f} ms, 1,000 rows {rows * 1e3:.2f} ms",
                    flush=True,
                )
    finally:
        processes.stop_all()
    medians = {name: {k: statistics.median(v) for k, v in figures.items()} for name, figures in samples.items()}
    base = medians["default answer (no choice)"]
    lines = [
        "# Output kinds: cost per choice (binary, 100 trees, compiled)",
        "",
        f"- machine: {report.machine_summary()}",
        f"- method: {args.repeat} round(s), medians; wrk {args.duration:g} s, 1 connection, for 1 row; "
        f"{args.requests_1k} sequential 1,000-row requests; {args.workers} workers; CSV in and out",
        "",
        "| choice | 1 row p50 (ms) | vs default | 1,000 rows (ms) | vs default |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in medians.items():
        lines.append(
            f"| {name} | {figures['p50']:.3f} | {figures['p50'] / base['p50']:.2f}× | "
            f"{figures['rows_1k']:.2f} | {figures['rows_1k'] / base['rows_1k']:.2f}× |"
        )
    text = "\n".join(lines) + "\n"
    print("\n" + text, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
