"""User code on our serve against Multi Model Server + the SageMaker Inference Toolkit, in one run.

    .venv/bin/python bench/user_code.py [--quick] [--repeat K] [--skip-mms]

The same inference.py (examples/toolkit/pandas_inference.py: pandas read_csv ->
Booster.predict -> CSV, the pattern of the SageMaker documentation) is served by

- ours: serve with SAGEMAKER_PROGRAM=inference.py (nginx -> gunicorn, 2 workers), and
- MMS + toolkit: multi-model-server started as sagemaker_inference.model_server does
  (2 workers), installed into build/bench-mms on first use (a Java runtime from apt if missing);

beside two more of ours on the same model: an inference.py with only model_fn (the built-in
steps do the rest) and the built-in handler with no user code. Interleaved rounds, medians.
The report goes to stdout and bench/results/user_code.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import harness
import measure
import processes
import report
import servers
from servers import Server
from workload import build_workload

EXAMPLES = servers.REPO_DIR / "examples" / "toolkit"
MMS_VENV = servers.REPO_DIR / "build" / "bench-mms"
MMS_REQUIREMENTS = servers.BENCH_DIR / "mms_requirements.txt"
RESULTS_FILE = servers.BENCH_DIR / "results" / "user_code.md"
MMS = "MMS + toolkit (inference.py)"
OURS_SCRIPT = "ours (inference.py)"
OURS_MODEL_FN = "ours (model_fn only)"
OURS_BUILTIN = "ours (built-in, no user code)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs, fewer 1,000-row requests (default 8 s)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the report shows medians over rounds")
    parser.add_argument("--workers", type=int, default=2, help="workers for every server (default 2)")
    parser.add_argument("--skip-mms", action="store_true", help="measure ours only")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    args.duration = 3.0 if args.quick else 8.0
    args.requests_1k = 10 if args.quick else 20
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def ensure_mms() -> Path:
    """build/bench-mms with MMS, the toolkit and our runtime pins; a Java runtime for MMS."""
    if shutil.which("java") is None:
        log("java missing: installing openjdk-17-jre-headless with apt-get")
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "openjdk-17-jre-headless"], check=True)
    stamp = MMS_VENV / "requirements.txt"
    wanted = MMS_REQUIREMENTS.read_text() + (servers.REPO_DIR / "container" / "requirements.txt").read_text()
    if not (stamp.is_file() and stamp.read_text() == wanted):
        log(f"installing MMS and the toolkit into {MMS_VENV} (first run only)")
        shutil.rmtree(MMS_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(MMS_VENV)], check=True)
        subprocess.run(
            [
                str(MMS_VENV / "bin" / "pip"),
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(MMS_REQUIREMENTS),
            ],
            check=True,
        )
        stamp.write_text(wanted)
    return MMS_VENV / "bin"


def ml_root(tmp: Path, name: str, model_file: Path, script: str | None) -> Path:
    """A SageMaker layout: model/model.txt, and model/code/inference.py when there is user code."""
    root = tmp / name
    (root / "model").mkdir(parents=True)
    shutil.copy(model_file, root / "model" / "model.txt")
    if script is not None:
        (root / "model" / "code").mkdir()
        shutil.copy(EXAMPLES / script, root / "model" / "code" / "inference.py")
    return root


def mms_port() -> int:
    """A free loopback port MMS accepts: it refuses 32767 and above ("Invalid port number")."""
    for candidate in random.sample(range(20_000, 30_000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        return candidate
    raise measure.BenchmarkError("no free port between 20000 and 30000 for MMS")


def start_mms(bin_dir: Path, root: Path, run_dir: Path, workers: int) -> Server:
    port = mms_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SAGEMAKER_BASE_DIR": str(root),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        # MMS refuses to start while the pid file in its temporary directory names a live
        # server: each one gets its own, so a benchmark can run two side by side.
        "TMPDIR": str(run_dir),
    }
    server = Server(name=MMS, base_url=f"http://127.0.0.1:{port}")
    argv = [str(bin_dir / "python"), str(servers.BENCH_DIR / "mms_peer.py"), str(run_dir / "mms.properties")]
    server.processes.append(processes.start("MMS", argv, run_dir / "mms.log", env=env, cwd=run_dir))
    server.ready_seconds = processes.wait_for_ping(server.base_url, server.processes, 180)
    return server


def start_all(args: argparse.Namespace, tmp: Path, model_file: Path) -> list[Server]:
    started = []
    for name, script, extra in (
        (OURS_SCRIPT, "pandas_inference.py", {"SAGEMAKER_PROGRAM": "inference.py"}),
        (OURS_MODEL_FN, "model_fn_only.py", {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}),
        (OURS_BUILTIN, None, {}),
    ):
        root = ml_root(tmp, name.split()[1].strip("(),"), model_file, script)
        # pandas_inference.py predicts with its own Booster, so its workers never switch to the compiled
        # trees; the others predict with the built-in steps and are measured once switched.
        server = servers.start_ours(
            servers.DEFAULT_SERVE, root, tmp, args.workers, 300, extra, name=name, until_compiled=name != OURS_SCRIPT
        )
        log(f"{name} ready in {server.ready_seconds:.1f} s")
        started.append(server)
    if not args.skip_mms:
        bin_dir = ensure_mms()
        root = ml_root(tmp, "mms", model_file, "pandas_inference.py")
        server = start_mms(bin_dir, root, tmp / "mms-run", args.workers)
        log(f"{MMS} ready in {server.ready_seconds:.1f} s")
        started.append(server)
    return started


def measure_rounds(
    args: argparse.Namespace, started: list[Server], payloads: dict, single: Path
) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {s.name: defaultdict(list) for s in started}
    for round_index in range(args.repeat):
        shift = round_index % len(started)
        for server in started[shift:] + started[:shift]:  # every server takes every position
            c1 = measure.run_wrk(server.invocations_url, single, connections=1, threads=1, duration_s=args.duration)
            c8 = measure.run_wrk(server.invocations_url, single, connections=8, threads=2, duration_s=args.duration)
            rows_1k = measure.median_latency_s(server.invocations_url, payloads[1_000], args.requests_1k)
            figures = {
                "p50_c1_ms": c1.p50_ms,
                "p99_c1_ms": c1.p99_ms,
                "rps_c8": c8.requests_per_second,
                "rows_1k_ms": rows_1k * 1e3,
            }
            log(f"round {round_index + 1}: {server.name}: " + ", ".join(f"{k} {v:,.3f}" for k, v in figures.items()))
            for key, value in figures.items():
                samples[server.name][key].append(value)
    return {name: {k: statistics.median(v) for k, v in metrics.items()} for name, metrics in samples.items()}


def render(
    medians: dict[str, dict[str, float]], errors: dict[str, float], args: argparse.Namespace, ready: dict[str, float]
) -> str:
    lines = [
        "# User code: our serve vs Multi Model Server + SageMaker Inference Toolkit",
        "",
        f"- machine: {report.machine_summary()}",
        f"- method: {args.repeat} round(s), medians; wrk {args.duration:g} s per run; {args.requests_1k} × 1,000 rows "
        f"per round; {args.workers} workers each; the same examples/toolkit/pandas_inference.py on ours and MMS",
        "- time to first /ping 200: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in ready.items()),
        "",
        "| server | 1 row p50, 1 conn (ms) | 1 row p99, 1 conn (ms) | 1 row req/s, 8 conn | 1,000 rows (ms) | max abs diff vs Booster.predict |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, figures in medians.items():
        lines.append(
            f"| {name} | {figures['p50_c1_ms']:.3f} | {figures['p99_c1_ms']:.2f} | {figures['rps_c8']:,.0f} | "
            f"{figures['rows_1k_ms']:.2f} | {errors[name]:.1e} |"
        )
    if MMS in medians:
        ours, mms = medians[OURS_SCRIPT], medians[MMS]
        lines += [
            "",
            f"Same inference.py, ours against MMS: p50 {ours['p50_c1_ms'] / mms['p50_c1_ms']:.2f}× (target ≤ 0.7×), "
            f"p99 {ours['p99_c1_ms'] / mms['p99_c1_ms']:.2f}×, "
            f"req/s at 8 connections {ours['rps_c8'] / mms['rps_c8']:.2f}× (target ≥ 1.5×), "
            f"1,000 rows {ours['rows_1k_ms'] / mms['rows_1k_ms']:.2f}×.",
        ]
    builtin, model_fn = medians[OURS_BUILTIN], medians[OURS_MODEL_FN]
    lines.append(
        f"model_fn-only against built-in: p50 {model_fn['p50_c1_ms'] / builtin['p50_c1_ms']:.2f}×, "
        f"req/s {model_fn['rps_c8'] / builtin['rps_c8']:.2f}×, 1,000 rows {model_fn['rows_1k_ms'] / builtin['rows_1k_ms']:.2f}×."
    )
    return "\n".join(lines) + "\n"


def measured_report(args: argparse.Namespace, tmp: Path) -> str:
    """Everything this benchmark measures, in ``tmp``, as its report."""
    workload = build_workload(tmp / "workload", tmp / "payloads")
    single = measure.write_wrk_script(workload.payloads[1], tmp)
    started = start_all(args, tmp, workload.model_file)
    expected = workload.booster.predict(workload.payloads[1_000].features)
    errors = {s.name: measure.prediction_error(s.invocations_url, workload.payloads[1_000], expected) for s in started}
    for server in started:  # warm every worker
        measure.run_wrk(server.invocations_url, single, connections=8, threads=2, duration_s=1)
    medians = measure_rounds(args, started, workload.payloads, single)
    return render(medians, errors, args, {s.name: s.ready_seconds for s in started})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run("lgbm-bench-user-code-", args.output, lambda tmp: measured_report(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
