"""Benchmark start-up: time to a healthy /ping, latency before and after the switch to the
compiled trees, and the whole server's memory, for models of growing size.

    .venv/bin/python bench/startup.py [--quick] [--trees 100,500,2000] [--leaves 31,63]
                                      [--objectives regression,binary,multiclass]

For each model (50 features, trained here on seeded data so every tree has its full leaf
count), `serve` starts with 2 workers and an empty compile cache, as a fresh instance of an
endpoint does. Measured:

- healthy: seconds from starting `serve` to the first `GET /ping` 200;
- before: p50 of 200 single-row requests and of 10 1,000-row requests right after that
  (LightGBM's predictor, while the compile runs at the lowest priority beside them);
- quick / final: seconds from healthy until every worker predicts with the quickly compiled
  trees, and with the fully optimised ones (`/stats`; `--switch-timeout` bounds the wait);
- after: the same p50s on the final trees;
- PSS: the proportional memory of serve, nginx, the gunicorn master and workers, warm, after
  the switch (from /proc/<pid>/smaps_rollup).

Not a test: targets (healthy <= 2 s; 100 trees after the switch <= 0.5 ms single-row p50)
are printed beside the figures. The report goes to stdout and bench/results/startup.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightgbm
import numpy as np
import requests

import measure
import processes
import servers
from workload import Payload, csv_body

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
FEATURES = 50
HEALTHY_TARGET_S = 2.0
SINGLE_ROW_TARGET_MS = 0.5


@dataclass
class Row:
    model: str
    trees: int
    healthy_s: float
    before_1: float
    before_1k: float
    quick_s: float | None
    final_s: float | None
    after_1: float | None
    after_1k: float | None
    pss_mb: float
    final_object: str  # what the workers predict with in the end


def final_object(server: servers.Server) -> str:
    """ "optimised", "quick (why)", or "LightGBM (why)", from /stats' compile state."""
    state = requests.get(f"{server.base_url}/stats", timeout=5).json().get("compile") or {}
    reason = state.get("reason") or ""
    if state.get("state") == "ready":
        return f"quick ({reason})" if reason.startswith("not fully optimised") else "optimised"
    return f"LightGBM ({reason or state.get('state', 'no compile')})"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default="100,500,2000", help="boosting rounds, comma-separated")
    parser.add_argument("--leaves", default="31,63")
    parser.add_argument("--objectives", default="regression,binary,multiclass")
    parser.add_argument("--quick", action="store_true", help="binary only, 63 leaves, fewer requests")
    parser.add_argument("--switch-timeout", type=float, default=600, help="longest wait for the final switch (s)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.objectives, args.leaves = "binary", "63"
    return args


def train(directory: Path, objective: str, trees: int, leaves: int) -> lightgbm.Booster:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(10_000, FEATURES))
    signal = x[:, 0] + np.sin(x[:, 1]) * x[:, 2] + x[:, 3:8].sum(axis=1) * 0.3
    y = {"regression": signal, "binary": (signal > 0).astype(int), "multiclass": np.digitize(signal, [-0.5, 0.5])}[
        objective
    ]
    params = {"objective": objective, "num_leaves": leaves, "min_data_in_leaf": 2, "verbose": -1, "seed": 1}
    if objective == "multiclass":
        params["num_class"] = 3
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=trees)
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(directory / "model.txt"))
    return booster


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return []
    for child in children:
        pids += process_tree(int(child))
    return pids


def wait_no_compile_job(pid: int, timeout: float = 60) -> None:
    """Wait until no compile job runs under ``pid``: a job that has reported its last object may
    still be exiting, holding its compiler's memory (gigabytes for large forests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [each for each in process_tree(pid) if b"compilation.job" in cmdline(each)]
        if not jobs:
            return
        time.sleep(0.2)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def process_pss_mb(pid: int) -> float:
    """One process's proportional set size (0 when it has just exited)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")) / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size of a process and all its descendants (shared pages split fairly),
    once no compile job runs: what the server holds while it serves."""
    wait_no_compile_job(pid)
    return sum(process_pss_mb(each) for each in process_tree(pid))


def payloads(directory: Path) -> dict[int, Payload]:
    rng = np.random.default_rng(11)
    out = {}
    for rows in (1, 1000):
        body = csv_body(rng.normal(size=(rows, FEATURES)))
        path = directory / f"rows_{rows}.csv"
        path.write_bytes(body)
        out[rows] = Payload(rows=rows, path=path, body=body)
    return out


def latencies(url: str, bodies: dict[int, Payload], quick: bool) -> tuple[float, float]:
    return (
        measure.median_latency_s(url, bodies[1], 100 if quick else 200) * 1000,
        measure.median_latency_s(url, bodies[1000], 5 if quick else 10) * 1000,
    )


def one_model(
    args: argparse.Namespace, tmp: Path, objective: str, trees: int, leaves: int, bodies: dict[int, Payload]
) -> Row:
    name = f"{objective} {trees}x{leaves}"
    root = tmp / name.replace(" ", "-") / "ml"
    booster = train(root / "model", objective, trees, leaves)
    env = {
        "LIGHTGBM_COMPILE_CACHE": str(root.parent / "cache"),
        "LIGHTGBM_COMPILE_TIMEOUT": str(int(args.switch_timeout)),
    }
    server = servers.start_ours(
        REPO / "container" / "program" / "serve",
        root,
        root.parent,
        args.workers,
        60,
        env,
        name=name,
        until_compiled=False,
    )
    try:
        before = latencies(server.invocations_url, bodies, args.quick)
        quick_s, final_s = servers.wait_compiled(server, args.workers, args.switch_timeout)
        compiled = final_s is not None or quick_s is not None
        after = latencies(server.invocations_url, bodies, args.quick) if compiled else (None, None)
        memory = pss_mb(server.processes[0].popen.pid)
        outcome = final_object(server)
    finally:
        processes.stop_all()
    return Row(name, booster.num_trees(), server.ready_seconds, *before, quick_s, final_s, *after, memory, outcome)


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def report(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        "# Start-up: time to healthy, and latency before/after the switch to compiled trees",
        "",
        f"- command: `.venv/bin/python bench/startup.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- {dt.datetime.now():%Y-%m-%d %H:%M}; {args.workers} workers; 50 features; empty compile cache per model",
        f"- targets: healthy <= {HEALTHY_TARGET_S} s for every model; 100-tree single-row p50 after the switch <= {SINGLE_ROW_TARGET_MS} ms",
        "- quick/final: seconds after healthy until every worker uses the quick / the final compile (the fully "
        "optimised one, or the quick one when the optimised one would exceed LIGHTGBM_COMPILE_MAX_MB or time out)",
        "",
        "| model | trees | healthy s | p50 1 row before ms | p50 1k rows before ms | quick s | final s "
        "| p50 1 row after ms | p50 1k rows after ms | PSS MB | predicts with |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.trees} | {row.healthy_s:.2f} | {row.before_1:.3f} | {row.before_1k:.2f} | {_f(row.quick_s, 1)} "
            f"| {_f(row.final_s, 1)} | {_f(row.after_1, 3)} | {_f(row.after_1k)} | {row.pss_mb:.0f} | {row.final_object} |"
        )
    healthy = max(row.healthy_s for row in rows)
    lines += [
        "",
        f"- slowest healthy: {healthy:.2f} s ({'meets' if healthy <= HEALTHY_TARGET_S else 'misses'} the target)",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    processes.install_cleanup()
    servers.ensure_tools()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        bodies = payloads(tmp)
        for objective in args.objectives.split(","):
            for leaves in (int(v) for v in args.leaves.split(",")):
                for trees in (int(v) for v in args.trees.split(",")):
                    started = time.monotonic()
                    rows.append(one_model(args, tmp, objective, trees, leaves, bodies))
                    print(f"{rows[-1]}  ({time.monotonic() - started:.0f} s)", flush=True)
    text = report(rows, args)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
