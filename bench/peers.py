"""Ours against KServe's LightGBM server and MLServer with mlserver-lightgbm, on the same model.

    .venv/bin/python bench/peers.py [--quick] [--repeat K]

Each peer is installed on first use into its own virtual environment under ``build/``
(``bench/kserve_requirements.txt``, ``bench/mlserver_requirements.txt``; never in the image or
``make test``) and run in the configurations worth comparing, each with ``OMP_NUM_THREADS=1``
(LightGBM's default OpenMP threads made both peers 7x slower and erratic at 8 connections on
2 cores; KServe's own runtime asks for 1 thread, a flag LightGBM 4 ignores):

- KServe (``bench/kserve_peer.py``: lgbserver re-created on the public ``kserve`` API, since
  lgbserver is not on PyPI): one uvicorn process (lgbserver's only mode), and 2 workers;
- MLServer: in-process (``parallel_workers=0``), and 2 inference workers;
- ours: ``serve`` with 2 workers (compiled trees, as served).

Same model (13 features, 100 trees, 31 leaves, ``bench/workload.py``) and the same values: ours
gets the CSV bodies of ``bench/run.py``; the peers get JSON carrying exactly those values (KServe
V1 ``{"instances": ...}``, MLServer V2 FP64 tensors). Every server's answers to 1, 1,000 and
100,000 rows are checked against ``Booster.predict`` (1e-9) before anything is timed. Rounds are
interleaved (the order rotates); medians over rounds of: 1-row p50 and req/s at 1 connection and
req/s at 8 (wrk), 1,000 and 100,000 rows (median of sequential requests), and the whole process
tree's PSS warm (once, after 2 s of one-row requests at 8 connections and before any large body)
and after each round's 100,000-row bodies. Report: stdout and ``bench/results/peers.md``.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

import harness
import measure
import processes
import servers
import startup
import workload
from workload import Payload

BENCH_DIR = Path(__file__).resolve().parent
BUILD_DIR = servers.REPO_DIR / "build"
RESULTS_FILE = BENCH_DIR / "results" / "peers.md"
MODEL_NAME = "lgb"
OURS = "ours (2 workers)"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def ensure_venv(name: str, requirements: Path) -> Path:
    """``build/bench-<name>`` with ``requirements`` installed (again when they change); its bin/."""
    venv = BUILD_DIR / f"bench-{name}"
    stamp = venv / "requirements.txt"
    if not (stamp.is_file() and stamp.read_text() == requirements.read_text()):
        log(f"installing {name} into {venv} (first run only)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r", str(requirements)]
        subprocess.run(pip, check=True)
        stamp.write_text(requirements.read_text())
    return venv / "bin"


@dataclass
class Peer:
    """A running server and how to talk to it."""

    name: str
    url: str  # where predictions are POSTed
    process: processes.ManagedProcess
    content_type: str
    body_for: Callable[[Payload], bytes]
    answers_of: Callable[[bytes], np.ndarray]
    bodies: dict[int, Payload]  # rows -> the body this server gets, as a file wrk can send


def _values(payload: Payload) -> list[list[float]]:
    """The exact values the CSV body carries (its %.6g text parsed), for the JSON bodies."""
    return [[float(field) for field in line.split(",")] for line in payload.body.decode().split("\n")]


def kserve_body(payload: Payload) -> bytes:
    return json.dumps({"instances": _values(payload)}).encode()


def mlserver_body(payload: Payload) -> bytes:
    values = _values(payload)
    flat = [value for row in values for value in row]
    tensor = {"name": "predict", "shape": [len(values), len(values[0])], "datatype": "FP64", "data": flat}
    return json.dumps({"inputs": [tensor]}).encode()


def kserve_answers(body: bytes) -> np.ndarray:
    return np.asarray(json.loads(body)["predictions"], dtype=float)


def mlserver_answers(body: bytes) -> np.ndarray:
    return np.asarray(json.loads(body)["outputs"][0]["data"], dtype=float)


def csv_answers(body: bytes) -> np.ndarray:
    return np.asarray([float(line) for line in body.decode().splitlines()], dtype=float)


def wait_ready(url: str, process: processes.ManagedProcess, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        if not process.alive():
            raise processes.ServerNotReady(f"{process.name} exited:\n{process.log_tail()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise processes.ServerNotReady(f"{process.name}: {url} not ready in {timeout:.0f} s:\n{process.log_tail()}")


def start_kserve(bin_dir: Path, model_file: Path, tmp: Path, workers: int) -> tuple[str, processes.ManagedProcess]:
    model_dir = tmp / "kserve-model"
    model_dir.mkdir(exist_ok=True)
    shutil.copy(model_file, model_dir / "model.bst")  # lgbserver takes the one *.bst file; text is fine
    port = processes.free_port()
    argv = [str(bin_dir / "python"), str(BENCH_DIR / "kserve_peer.py"), "--model_dir", str(model_dir)]
    argv += ["--model_name", MODEL_NAME, "--http_port", str(port), "--enable_grpc", "false", "--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    name = f"KServe ({workers} process{'es' if workers > 1 else ''})"
    process = processes.start(name, argv, tmp / f"kserve-{workers}.log", env=env)
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/v1/models/{MODEL_NAME}", process)
    return f"{base}/v1/models/{MODEL_NAME}:predict", process


def start_mlserver(bin_dir: Path, model_file: Path, tmp: Path, workers: int) -> tuple[str, processes.ManagedProcess]:
    repo = tmp / f"mlserver-{workers}"
    (repo / MODEL_NAME).mkdir(parents=True)
    shutil.copy(model_file, repo / MODEL_NAME / "model.txt")
    port = processes.free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": processes.free_port(),
        "metrics_port": processes.free_port(),
        "parallel_workers": workers,
    }
    (repo / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./model.txt"},
    }
    (repo / MODEL_NAME / "model-settings.json").write_text(json.dumps(model_settings))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    name = "MLServer (in-process)" if workers == 0 else f"MLServer ({workers} workers)"
    process = processes.start(
        name, [str(bin_dir / "mlserver"), "start", str(repo)], tmp / f"mls-{workers}.log", env=env, cwd=repo
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/v2/models/{MODEL_NAME}/ready", process)
    return f"{base}/v2/models/{MODEL_NAME}/infer", process


def json_payloads(
    work: workload.Workload, directory: Path, make: Callable[[Payload], bytes], tag: str
) -> dict[int, Payload]:
    found = {}
    for rows, payload in work.payloads.items():
        body = make(payload)
        path = directory / f"{tag}_{rows}.json"
        path.write_bytes(body)
        found[rows] = Payload(rows=rows, path=path, body=body)
    return found


def start_everything(args: argparse.Namespace, tmp: Path, work: workload.Workload) -> list[Peer]:
    kserve_bin = ensure_venv("kserve", BENCH_DIR / "kserve_requirements.txt")
    mlserver_bin = ensure_venv("mlserver", BENCH_DIR / "mlserver_requirements.txt")
    started: list[Peer] = []
    ours = servers.start_ours(args.serve, work.root, tmp, 2, 120.0, {})
    started.append(
        Peer(OURS, ours.invocations_url, ours.processes[0], "text/csv", lambda p: p.body, csv_answers, work.payloads)
    )
    kserve_bodies = json_payloads(work, tmp, kserve_body, "kserve")
    mlserver_bodies = json_payloads(work, tmp, mlserver_body, "mlserver")
    for workers in (1, 2):
        url, process = start_kserve(kserve_bin, work.model_file, tmp, workers)
        started.append(Peer(process.name, url, process, "application/json", kserve_body, kserve_answers, kserve_bodies))
    for workers in (0, 2):
        url, process = start_mlserver(mlserver_bin, work.model_file, tmp, workers)
        started.append(
            Peer(process.name, url, process, "application/json", mlserver_body, mlserver_answers, mlserver_bodies)
        )
    return started


def post_checked(session: requests.Session, peer: Peer, rows: int) -> requests.Response:
    """One request of ``rows`` rows to ``peer``: 2xx and one answer per row, or BenchmarkError."""
    return measure.post_checked(
        session,
        peer.url,
        peer.bodies[rows],
        {"Content-Type": peer.content_type},
        lambda response: peer.answers_of(response.content).size,
    )


def check(peer: Peer, work: workload.Workload) -> None:
    """Every size's answer against Booster.predict on the values sent."""
    with requests.Session() as session:
        for rows, payload in work.payloads.items():
            got = peer.answers_of(post_checked(session, peer, rows).content).ravel()
            expected = work.booster.predict(np.asarray(_values(payload)))
            if got.shape != expected.shape or np.max(np.abs(got - expected)) > 1e-9:
                raise measure.BenchmarkError(f"{peer.name}: {rows} rows answered differently from Booster.predict")


def median_seconds(peer: Peer, rows: int, count: int) -> float:
    """Median wall time of ``count`` sequential checked requests of ``rows`` rows (after one warm-up)."""
    return measure.median_latency_s(
        peer.url,
        peer.bodies[rows],
        count,
        {"Content-Type": peer.content_type},
        lambda response: peer.answers_of(response.content).size,
    )


def one_round(peer: Peer, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    script = measure.write_wrk_script(
        peer.bodies[1], tmp, {"Content-Type": peer.content_type}, name=f"{peer.name.split()[0]}-{id(peer)}.lua"
    )
    measure.run_wrk(peer.url, script, 8, 2, 1.0)  # warm every worker
    one = measure.run_wrk(peer.url, script, 1, 1, args.duration)
    eight = measure.run_wrk(peer.url, script, 8, 2, args.duration)
    figures = {
        "p50_ms": one.p50_ms,
        "rps_c1": one.requests_per_second,
        "rps_c8": eight.requests_per_second,
        "rows_1k_ms": median_seconds(peer, 1_000, args.requests_1k) * 1e3,
        "rows_100k_s": median_seconds(peer, 100_000, args.requests_100k),
    }
    figures["pss_after_100k_mb"] = startup.pss_mb(peer.process.popen.pid)
    return figures


def render(medians: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    peers = [name for name in medians if name != OURS]
    best = {
        "p50_ms": min(medians[p]["p50_ms"] for p in peers),
        "rps_c8": max(medians[p]["rps_c8"] for p in peers),
        "rows_1k_ms": min(medians[p]["rows_1k_ms"] for p in peers),
        "rows_100k_s": min(medians[p]["rows_100k_s"] for p in peers),
    }
    load = os.getloadavg()
    lines = [
        "# Ours against KServe and MLServer (same model, same values)",
        "",
        f"- machine: {os.cpu_count()} cores; load average at start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}",
        f"- {args.repeat} interleaved rounds, medians; wrk {args.duration:g} s per run; "
        f"{args.requests_1k} x 1,000 rows, {args.requests_100k} x 100,000 rows; peers with OMP_NUM_THREADS=1",
        "",
        "| server | 1 row p50 (ms) | req/s, 1 conn | req/s, 8 conn | 1,000 rows (ms) | 100,000 rows (s) "
        "| PSS warm (MB) | PSS after 100k (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in medians.items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.3f} | {figures['rps_c1']:,.0f} | {figures['rps_c8']:,.0f} "
            f"| {figures['rows_1k_ms']:.2f} | {figures['rows_100k_s']:.3f} | {figures['pss_warm_mb']:.0f} "
            f"| {figures['pss_after_100k_mb']:.0f} |"
        )
    ours = medians[OURS]
    lines += [
        "",
        "Ours against the best peer of each figure (targets of issue 28): "
        f"p50 {ours['p50_ms'] / best['p50_ms']:.2f}x (<= 0.6x), "
        f"req/s at 8 {ours['rps_c8'] / best['rps_c8']:.2f}x (>= 3x), "
        f"1,000 rows {ours['rows_1k_ms'] / best['rows_1k_ms']:.2f}x (<= 0.6x), "
        f"100,000 rows {ours['rows_100k_s'] / best['rows_100k_s']:.2f}x (<= 0.5x); "
        f"PSS {ours['pss_warm_mb']:.0f} MB warm (<= 180), {ours['pss_after_100k_mb']:.0f} MB after 100k (<= 200).",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs, fewer large-body requests")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--serve", type=Path, default=servers.DEFAULT_SERVE, help="our serve executable")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    args.duration = 3.0 if args.quick else 8.0
    args.requests_1k = 10 if args.quick else 20
    args.requests_100k = 3 if args.quick else 5
    return args


def measured_report(args: argparse.Namespace, tmp: Path) -> str:
    """Every server started, checked and measured in interleaved rounds, in ``tmp``; the report."""
    work = workload.build_workload(tmp / "ml", tmp / "payloads")
    peers = start_everything(args, tmp, work)
    warm: dict[str, float] = {}
    for peer in peers:  # warm: every worker has answered, no large body yet
        script = measure.write_wrk_script(peer.bodies[1], tmp, {"Content-Type": peer.content_type}, name="warm.lua")
        measure.run_wrk(peer.url, script, 8, 2, 2.0)
        warm[peer.name] = startup.pss_mb(peer.process.popen.pid)
    for peer in peers:
        check(peer, work)
    log(f"answers checked against Booster.predict: {', '.join(peer.name for peer in peers)}")
    rounds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for number in range(args.repeat):
        order = peers[number % len(peers) :] + peers[: number % len(peers)]
        for peer in order:
            figures = one_round(peer, args, tmp)
            log(f"round {number + 1}: {peer.name}: " + ", ".join(f"{k} {v:,.3f}" for k, v in figures.items()))
            for key, value in figures.items():
                rounds[peer.name][key].append(value)
    medians = {
        name: {"pss_warm_mb": warm[name], **{key: statistics.median(values) for key, values in figures.items()}}
        for name, figures in rounds.items()
    }
    return render(medians, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run("bench-peers-", args.output, lambda tmp: measured_report(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
