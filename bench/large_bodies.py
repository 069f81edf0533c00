"""Asynchronous inference's large bodies: wall time and peak memory of the whole server for a
200 MB and a 1 GB CSV body, against what the largest body today's build accepts (100 MB) costs it.

    .venv/bin/python bench/large_bodies.py [--before PATH/TO/serve] [--sizes-mb 200,1024] [--repeat K]

The model is bench/workload.py's (13 features, 100 trees, 31 leaves, compiled). Bodies are
CSV as the SDK's CSVSerializer writes them (``%.6g``), made by repeating a block of 10,000 rows
up to the size asked for, sent from a file by one client. ``ours`` runs with
SAGEMAKER_MAX_PAYLOAD_IN_MB=1024 and SAGEMAKER_MODEL_SERVER_TIMEOUT=3600 (2 workers); the
``before`` build (default: none; e.g. a worktree of the commit before large bodies were read in
pieces) can take at most 100 MB. Measured per request, median of ``--repeat``: wall time, rows
per second, and the peak of the server's memory: the resident set (RSS) of every process of the
server (serve, nginx, gunicorn master and workers) summed, sampled every 20 ms while the request
runs (shared pages counted once per process, so this over-counts a little). Also the 100,000-row
request (~12 MB), the figure large bodies must not fall below in rows per second.

Targets printed: the 1 GB body's peak <= 1.5 GB for the whole server; its rows/s no worse than
the 100,000-row request's. The report goes to stdout and bench/results/large_bodies.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import requests

import harness
import measure
import report
import servers
import startup
import workload
from servers import Server

RESULTS_FILE = servers.BENCH_DIR / "results" / "large_bodies.md"
BLOCK_ROWS = 10_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="an earlier build's serve (accepts at most 100 MB)")
    parser.add_argument("--sizes-mb", default="200,1024", help="body sizes for ours, comma-separated (MB)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def body_file(directory: Path, block: bytes, megabytes: float) -> tuple[Path, int]:
    """A CSV body of about ``megabytes`` MB (whole blocks of rows), and its row count."""
    copies = max(1, round(megabytes * 1024 * 1024 / len(block)))
    path = directory / f"body-{megabytes:g}MB.csv"
    with path.open("wb") as out:
        for index in range(copies):
            out.write(block if index == copies - 1 else block + b"\n")
    return path, copies * BLOCK_ROWS


def tree_rss_mb(pid: int) -> float:
    total = 0
    for each in startup.process_tree(pid):
        try:
            total += int(Path(f"/proc/{each}/statm").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total * 4096 / 1024 / 1024


def timed_request(server: Server, path: Path, rows: int) -> dict[str, float]:
    """One request of the body in ``path``: wall seconds, rows/s, the server's peak summed RSS."""
    pid = server.processes[0].popen.pid
    startup.wait_no_compile_job(pid)
    idle = tree_rss_mb(pid)
    peak = [idle]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        with path.open("rb") as body:
            response = requests.post(
                server.invocations_url, data=body, headers={"Content-Type": "text/csv"}, timeout=3600
            )
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    if response.status_code != 200:
        raise measure.BenchmarkError(f"{server.name}: HTTP {response.status_code}: {response.text[:300]}")
    answers = response.content.count(b"\n")
    if answers != rows:
        raise measure.BenchmarkError(f"{server.name}: {rows} rows in, {answers} answers out")
    return {"seconds": elapsed, "rows_per_s": rows / elapsed, "peak_mb": peak[0], "idle_mb": idle}


def measured_report(args: argparse.Namespace, tmp: Path) -> str:
    """Everything this benchmark measures, in ``tmp``, as its report."""
    rng = np.random.default_rng(workload.SEED)
    root = tmp / "ml"
    workload.train_model(root / "model", rng)
    payloads = workload.write_payloads(tmp / "payloads", rng, (BLOCK_ROWS, 100_000))
    block = payloads[BLOCK_ROWS].body
    sizes = [float(size) for size in args.sizes_mb.split(",") if size]
    bodies = {"100,000 rows": (payloads[100_000].path, 100_000), "99 MB": body_file(tmp, block, 99)}
    for size in sizes:
        bodies[f"{size:g} MB"] = body_file(tmp, block, size)
    env = {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1024", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600"}
    started = {"ours": servers.start_ours(servers.DEFAULT_SERVE, root, tmp, 2, 600, env, name="ours")}
    if args.before is not None:
        before_env = {"SAGEMAKER_MAX_PAYLOAD_IN_MB": "100", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "3600"}
        started["before"] = servers.start_ours(args.before, root, tmp, 2, 600, before_env, name="before")
    cases = [(name, body) for name in started for body in bodies if name == "ours" or body in ("100,000 rows", "99 MB")]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {case: [] for case in cases}
    for round_index in range(args.repeat):
        for name, body in cases:
            path, rows = bodies[body]
            figures = timed_request(started[name], path, rows)
            samples[(name, body)].append(figures)
            log(
                f"round {round_index + 1}: {name}, {body} ({rows:,} rows, {path.stat().st_size / 2**20:,.0f} MB): "
                f"{figures['seconds']:.2f} s, {figures['rows_per_s']:,.0f} rows/s, peak {figures['peak_mb']:,.0f} MB "
                f"(idle {figures['idle_mb']:,.0f} MB)"
            )
    medians = {
        case: {key: statistics.median(sample[key] for sample in values) for key in values[0]}
        for case, values in samples.items()
    }
    lines = [
        "# Large bodies: wall time and the whole server's peak memory",
        "",
        f"- machine: {report.machine_summary()}",
        f"- model: {workload.N_FEATURES} features, {workload.N_TREES} trees, compiled; 2 workers; CSV `%.6g`; "
        f"median of {args.repeat}; peak = the server's processes' RSS summed, sampled every 20 ms",
        "",
        "| build | body | rows | wall (s) | rows/s | peak RSS, whole server (MB) | idle (MB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (name, body), figures in medians.items():
        lines.append(
            f"| {name} | {body} | {bodies[body][1]:,} | {figures['seconds']:.2f} | {figures['rows_per_s']:,.0f} "
            f"| {figures['peak_mb']:,.0f} | {figures['idle_mb']:,.0f} |"
        )
    largest = f"{max(sizes):g} MB"
    if ("ours", largest) in medians:
        big, small = medians[("ours", largest)], medians[("ours", "100,000 rows")]
        lines += [
            "",
            f"ours, {largest}: peak {big['peak_mb']:,.0f} MB for the whole server (target ≤ 1,536 MB); "
            f"{big['rows_per_s']:,.0f} rows/s against {small['rows_per_s']:,.0f} for 100,000 rows "
            f"({big['rows_per_s'] / small['rows_per_s']:.2f}×, target ≥ 1×).",
        ]
    if ("before", "99 MB") in medians:
        before = medians[("before", "99 MB")]
        scale = bodies[largest][1] / bodies["99 MB"][1]
        lines.append(
            f"before (whole bodies), 99 MB: peak {before['peak_mb']:,.0f} MB, {before['seconds']:.2f} s; "
            f"scaled to {largest} ({scale:.1f}×): ~{before['idle_mb'] + (before['peak_mb'] - before['idle_mb']) * scale:,.0f} MB, "
            f"~{before['seconds'] * scale:.1f} s (it refuses bodies over 100 MB)."
        )
    text = "\n".join(lines) + "\n"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run("lgbm-bench-large-", args.output, lambda tmp: measured_report(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
