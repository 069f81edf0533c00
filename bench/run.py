"""Benchmark our SageMaker LightGBM server against the classic AWS BYOC sample, in one run.

    .venv/bin/python bench/run.py [--quick] [--repeat K] [--only-baseline] ...

Both servers run side by side on loopback ports and are measured in alternating order,
so a noisy neighbour on this small machine hurts both rather than one of them. The
report is printed and written to bench/results/latest.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import lightgbm

import measure
import processes
import report
import servers
from measure import BenchmarkError
from processes import ServerNotReady
from servers import Server
from workload import N_FEATURES, N_TREES, NUM_LEAVES, Workload, build_workload

RESULTS_FILE = servers.BENCH_DIR / "results" / "latest.md"
COMPARED = "before"  # the name of the --compare-serve server in logs and the report

Measurement = Callable[[Server], dict[str, float]]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs and fewer large-body requests (default 8 s)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="K",
        help="measurement rounds; the report shows the median over rounds (default 3)",
    )
    parser.add_argument("--duration", type=float, metavar="S", help="seconds per wrk run (overrides --quick)")
    parser.add_argument(
        "--requests-1k", type=int, metavar="N", help="timed 1,000-row requests per round (20; quick 10)"
    )
    parser.add_argument(
        "--requests-100k", type=int, metavar="N", help="timed 100,000-row requests per round (5; quick 3)"
    )
    parser.add_argument("--workers", type=int, default=2, help="SAGEMAKER_MODEL_SERVER_WORKERS for ours (default 2)")
    parser.add_argument(
        "--baseline-workers",
        type=int,
        default=multiprocessing.cpu_count(),
        help="gunicorn workers for the baseline (default: cores, as the sample's serve)",
    )
    parser.add_argument("--serve", type=Path, default=servers.DEFAULT_SERVE, help="our serve executable")
    parser.add_argument(
        "--compare-serve",
        type=Path,
        metavar="SERVE",
        help="another build of our serve (e.g. a worktree of an earlier commit), measured in the same "
        "interleaved rounds and reported as before -> ours",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for our serve (repeatable)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for GET /ping (ours may compile the model first)",
    )
    parser.add_argument("--only-baseline", action="store_true", help="measure the classic baseline alone")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary directory (model, logs)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="where to write the markdown report")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.requests_1k = args.requests_1k or (10 if args.quick else 20)
    args.requests_100k = args.requests_100k or (3 if args.quick else 5)
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes KEY=VALUE")
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def start_servers(args: argparse.Namespace, workload: Workload, tmp: Path) -> list[Server]:
    """The baseline first, then ours unless --only-baseline; each is ready when /ping answers 200."""
    started = [
        servers.start_classic_baseline(workload.root, tmp / "baseline", args.baseline_workers, args.ready_timeout)
    ]
    log(f"classic baseline ready in {started[0].ready_seconds:.1f} s at {started[0].base_url}")
    if not args.only_baseline:
        ours = servers.start_ours(args.serve, workload.root, tmp, args.workers, args.ready_timeout, args.server_env)
        log(f"ours ready in {ours.ready_seconds:.1f} s at {ours.base_url}")
        started.append(ours)
    if args.compare_serve is not None:
        before = servers.start_ours(
            args.compare_serve, workload.root, tmp, args.workers, args.ready_timeout, args.server_env, name=COMPARED
        )
        log(f"{COMPARED} ({args.compare_serve}) ready in {before.ready_seconds:.1f} s at {before.base_url}")
        started.append(before)
    return started


def check_predictions(started: Sequence[Server], workload: Workload) -> dict[str, float]:
    """Compare each server's 1,000-row answer with LightGBM itself, on the values as sent."""
    payload = workload.payloads[1_000]
    expected = lightgbm.Booster(model_file=str(workload.model_file)).predict(payload.features)
    errors = {}
    for server in started:
        errors[server.name] = measure.prediction_error(server.invocations_url, payload, expected)
        log(f"{server.name}: 1,000-row predictions vs booster.predict: max abs diff {errors[server.name]:.3e}")
    return errors


def measurements(args: argparse.Namespace, workload: Workload, single: Path) -> list[tuple[str, Measurement]]:
    """The four measurements of one round, each a function of the server; `single` is wrk's script."""

    def one_row_c1(server: Server) -> dict[str, float]:
        result = measure.run_wrk(server.invocations_url, single, connections=1, threads=1, duration_s=args.duration)
        return {"p50_c1_ms": result.p50_ms, "p99_c1_ms": result.p99_ms, "rps_c1": result.requests_per_second}

    def one_row_c8(server: Server) -> dict[str, float]:
        result = measure.run_wrk(server.invocations_url, single, connections=8, threads=2, duration_s=args.duration)
        return {"rps_c8": result.requests_per_second}

    def rows_1k(server: Server) -> dict[str, float]:
        seconds = measure.median_latency_s(server.invocations_url, workload.payloads[1_000], args.requests_1k)
        return {"rows_1k_ms": seconds * 1e3}

    def rows_100k(server: Server) -> dict[str, float]:
        return {
            "rows_100k_s": measure.median_latency_s(
                server.invocations_url, workload.payloads[100_000], args.requests_100k
            )
        }

    return [
        ("1 row, 1 connection", one_row_c1),
        ("1 row, 8 connections", one_row_c8),
        ("1,000 rows", rows_1k),
        ("100,000 rows", rows_100k),
    ]


def warm_up(started: Sequence[Server], script: Path) -> None:
    """A short burst at 8 connections, so every worker has loaded the model (the baseline loads lazily)."""
    for server in started:
        measure.run_wrk(server.invocations_url, script, connections=8, threads=2, duration_s=1)


def run_rounds(
    args: argparse.Namespace, started: Sequence[Server], plan: list[tuple[str, Measurement]]
) -> dict[str, dict[str, float]]:
    """Interleave: every measurement runs on each server in turn, the order rotating each round
    (with three servers, a flip would leave the middle one always right after the same neighbour)."""
    samples: dict[str, dict[str, list[float]]] = {s.name: defaultdict(list) for s in started}
    for round_index in range(args.repeat):
        shift = round_index % len(started)
        order = list(started[shift:]) + list(started[:shift])
        for label, measurement in plan:
            for server in order:
                figures = measurement(server)
                shown = ", ".join(f"{key} {value:,.3f}" for key, value in figures.items())
                log(f"round {round_index + 1}/{args.repeat} {label}: {server.name}: {shown}")
                for key, value in figures.items():
                    samples[server.name][key].append(value)
    return {
        name: {key: statistics.median(values) for key, values in metrics.items()} for name, metrics in samples.items()
    }


def _size(n_bytes: int) -> str:
    return (
        f"{n_bytes} B"
        if n_bytes < 10_000
        else f"{n_bytes / 1e3:,.0f} kB"
        if n_bytes < 1e6
        else f"{n_bytes / 1e6:.1f} MB"
    )


def context_lines(
    args: argparse.Namespace, workload: Workload, started: Sequence[Server], machine: str
) -> dict[str, str]:
    sizes = ", ".join(
        f"{rows:,} row{'s' * (rows != 1)} = {_size(len(p.body))}" for rows, p in workload.payloads.items()
    )
    ready = ", ".join(f"{s.name} {s.ready_seconds:.1f} s" for s in started)
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine,
        "model": f"LightGBM {lightgbm.__version__} regression, {N_FEATURES} features, {N_TREES} trees, "
        f"{NUM_LEAVES} leaves",
        "bodies (text/csv)": sizes,
        "servers": f"classic baseline: nginx + gunicorn gevent × {args.baseline_workers}; "
        f"ours: {args.serve.name} with {args.workers} workers"
        + (" (not run: --only-baseline)" if args.only_baseline else ""),
        "time to first /ping 200": ready,
        "method": f"{args.repeat} round(s), median over rounds; wrk {args.duration:g} s per run (1 row); "
        f"{args.requests_1k} × 1,000 rows and {args.requests_100k} × 100,000 rows per round "
        f"(sequential, median, after a warm-up request)",
    }


def benchmark(args: argparse.Namespace, tmp: Path) -> int:
    machine = report.machine_summary()
    log(f"working in {tmp}; {machine}")
    workload = build_workload(tmp / "ml", tmp / "payloads")
    log(f"trained {workload.model_file}; payloads in {tmp / 'payloads'}")
    single_row_script = measure.write_wrk_script(workload.payloads[1], tmp)
    started = start_servers(args, workload, tmp)
    errors = check_predictions(started, workload)
    warm_up(started, single_row_script)
    medians = run_rounds(args, started, measurements(args, workload, single_row_script))
    text = report.render(
        medians["classic baseline"], medians.get("ours"), errors, context_lines(args, workload, started, machine)
    )
    if COMPARED in medians and "ours" in medians:
        text += report.render_comparison(medians[COMPARED], medians["ours"], COMPARED)
    print("\n" + text, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"report written to {args.output}")
    ours_error = errors.get("ours")
    return 1 if ours_error is not None and ours_error > report.PREDICTION_TOLERANCE else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    processes.install_cleanup()
    servers.ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="lgbm-bench-"))
    keep = args.keep_temp
    try:
        return benchmark(args, tmp)
    except (BenchmarkError, ServerNotReady, FileNotFoundError) as error:
        print(f"[bench] FAILED: {error}", file=sys.stderr, flush=True)
        keep = True  # the server logs explain the failure
        return 1
    finally:
        processes.stop_all()
        if keep:
            log(f"kept {tmp} (model, payloads, server logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
