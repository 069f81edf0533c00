"""Benchmark multi-model mode: cold loads, hot invokes, and the single-model server next to it.

    .venv/bin/python bench/multi_model.py [--quick] [--repeat K] [--copies N] ...

Trains a small (100 trees) and a large (~3.5 MB) model, starts `serve` in multi-model mode
twice (4 request threads per worker, the default, and one: LIGHTGBM_SERVER_THREADS=1) and, for
each model, in single-model mode (default predictor: compiled trees), then measures:

- cold load: the first request for each of N fresh copies (distinct names) through
  `X-Amzn-SageMaker-Target-Model`, and `POST /models` for N more copies;
- hot invoke: 1 row at 1 connection with wrk against a model every worker holds, once the
  hot models are compiled (/stats final_compiled_models), next to the single-model server;
- hot invoke while loads run: the same, while as many clients as there are workers keep
  loading (and unloading) copies of the large model: what a slow load costs loaded models,
  the property the default threads are for.

The report is printed and written to bench/results/multi_model.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightgbm
import numpy as np
import requests

import measure
import processes
import report
import servers
import workload
from measure import BenchmarkError
from processes import ServerNotReady
from servers import Server
from workload import N_FEATURES, N_TREES, NUM_LEAVES, SEED, TRAIN_ROWS, Payload, _features, _target, train_model

RESULTS_FILE = servers.BENCH_DIR / "results" / "multi_model.md"
TARGET_HEADER = "X-Amzn-SageMaker-Target-Model"
SIZES = ("small", "large")
LARGE_TARGET_BYTES = 3_500_000
COLD_GOAL_MS = 50.0  # small model, median first-request latency through TargetModel
HOT_GOAL_RATIO = 1.10  # hot multi-model p50 at most 10 % above single-model p50 (both compiled)
# Servers per model size, in the order of the first round's measurements.
KINDS = ("mme", "mme-sync", "single")
SWEEP_WAIT_S = 0.6  # a worker publishes its counters for /stats every 0.5 s (multi_model/store.py)
MME_KINDS = {"mme": {}, "mme-sync": {"LIGHTGBM_SERVER_THREADS": "1"}}
MME_LABELS = {"mme": "multi-model (4 threads, default)", "mme-sync": "multi-model (1 thread)"}


def log(message: str) -> None:
    print(f"[bench-mme] {message}", flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 s wrk runs and 3 copies per size (default 5 s, 10)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="K",
        help="measurement rounds; the report shows the median over rounds (default 3)",
    )
    parser.add_argument(
        "--copies", type=int, metavar="N", help="cold loads per model size, per way and per round (10; quick 3)"
    )
    parser.add_argument("--duration", type=float, metavar="S", help="seconds per wrk run (overrides --quick)")
    parser.add_argument(
        "--large-mb",
        type=float,
        default=LARGE_TARGET_BYTES / 1e6,
        help="grow the large model until its file reaches this many MB (default 3.5)",
    )
    parser.add_argument("--workers", type=int, default=2, help="SAGEMAKER_MODEL_SERVER_WORKERS (default 2)")
    parser.add_argument("--serve", type=Path, default=servers.DEFAULT_SERVE, help="our serve executable")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every serve (repeatable)",
    )
    parser.add_argument(
        "--compile-timeout",
        type=int,
        default=900,
        help="LIGHTGBM_COMPILE_TIMEOUT for the lleaves servers: compiling ~1,200 trees takes "
        "minutes the first time (then it is cached); default 900",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=1000.0,
        help="seconds to wait for /ping, then for the compiled trees (default 1000)",
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary directory (models, logs)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="where to write the markdown report")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.copies = args.copies or (3 if args.quick else 10)
    if args.copies < 1:
        parser.error("--copies must be at least 1")
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes KEY=VALUE")
    return args


# ---------------------------------------------------------------------------- models and layout


@dataclass(frozen=True)
class BenchModel:
    label: str
    model_file: Path
    booster: lightgbm.Booster
    trees: int
    size_bytes: int


def _file_bytes(booster: lightgbm.Booster, trees: int) -> int:
    return len(booster.model_to_string(num_iteration=trees).encode())


def train_large(model_dir: Path, target_bytes: int, bytes_per_tree: float) -> Path:
    """The small model's data and parameters, with trees added until the file reaches `target_bytes`.

    Trains a little past the estimate, then keeps the smallest number of trees whose saved
    file is at least `target_bytes` (the size is monotonic in the number of trees).
    """
    rng = np.random.default_rng(SEED)  # the same rows as workload.train_model
    x = _features(rng, TRAIN_ROWS)
    params = {"objective": "regression", "num_leaves": NUM_LEAVES, "learning_rate": 0.1, "seed": SEED, "verbose": -1}
    rounds = math.ceil(target_bytes / bytes_per_tree * 1.1)
    booster = lightgbm.train(
        params, lightgbm.Dataset(x, _target(x, rng)), num_boost_round=rounds, keep_training_booster=True
    )
    while _file_bytes(booster, booster.num_trees()) < target_bytes:
        for _ in range(50):
            booster.update()
    low, high = 1, booster.num_trees()
    while low < high:
        middle = (low + high) // 2
        if _file_bytes(booster, middle) >= target_bytes:
            high = middle
        else:
            low = middle + 1
    model_dir.mkdir(parents=True, exist_ok=True)
    model_file = model_dir / "model.txt"
    booster.save_model(str(model_file), num_iteration=low)
    return model_file


def train_models(directory: Path, large_target_bytes: int) -> dict[str, BenchModel]:
    """small = bench/run.py's model (same seed, 100 trees); large = the same, grown to ~3.5 MB."""
    small_file, _ = train_model(directory / "small", np.random.default_rng(SEED))
    bytes_per_tree = small_file.stat().st_size / N_TREES
    large_file = train_large(directory / "large", large_target_bytes, bytes_per_tree)
    models = {}
    for label, path in (("small", small_file), ("large", large_file)):
        booster = lightgbm.Booster(model_file=str(path))  # exactly what the servers read
        models[label] = BenchModel(label, path, booster, booster.num_trees(), path.stat().st_size)
    return models


def write_payloads(directory: Path) -> dict[int, Payload]:
    """1 row (timed) and 1,000 rows (the correctness check), in CSVSerializer's format."""
    return workload.write_payloads(directory, np.random.default_rng(SEED + 1), row_counts=(1, 1_000))


def place(model: BenchModel, model_dir: Path) -> Path:
    """Copy the model file to `<model_dir>/model.txt`, SageMaker's `<name>/model/` layout."""
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.model_file, model_dir / "model.txt")
    return model_dir


def cold_name(label: str, i: int) -> str:
    return f"{label}-cold-{i}"


def api_name(label: str, i: int) -> str:
    return f"{label}-api-{i}"


def hot_name(label: str) -> str:
    return f"{label}-hot"


WARM_UP_NAME = "warm-up"


def lay_out_multi_model_root(root: Path, models: dict[str, BenchModel], copies: int) -> None:
    """`<root>/models/<name>/model/model.txt` for every name the benchmark will ask for."""
    place(models["small"], root / "models" / WARM_UP_NAME / "model")
    for label, model in models.items():
        place(model, root / "models" / hot_name(label) / "model")
        for i in range(copies):
            place(model, root / "models" / cold_name(label, i) / "model")
            place(model, root / "models" / api_name(label, i) / "model")


# ---------------------------------------------------------------------------- servers


@dataclass
class Endpoint:
    """A server plus what to send it for one model: the URL and wrk script of the hot measurement."""

    server: Server
    headers: dict[str, str]
    script: Path

    @property
    def name(self) -> str:
        return self.server.name


def start_server(args: argparse.Namespace, name: str, ml_root: Path, run_dir: Path, env: dict[str, str]) -> Server:
    run_dir.mkdir(parents=True, exist_ok=True)
    server = servers.start_ours(
        args.serve, ml_root, run_dir, args.workers, args.ready_timeout, {**env, **args.server_env}
    )
    server.name = name
    log(f"{name} ready in {server.ready_seconds:.1f} s at {server.base_url}")
    return server


def predictors_in_log(server: Server) -> str:
    """Which predictor the workers loaded, from their "model loaded: ... predictor=X" lines."""
    text = server.processes[0].log_path.read_text(errors="replace")
    found = sorted(set(re.findall(r"predictor=(\w+)", text)))
    return "/".join(found) or "unknown"


def start_all(
    args: argparse.Namespace, tmp: Path, models: dict[str, BenchModel], payload: Payload
) -> tuple[dict[str, Server], dict[str, dict[str, Endpoint]]]:
    """Two multi-model servers (4 threads, 1 thread) on one models root; per size, a single-model server."""
    mme_root = tmp / "ml-multi"
    lay_out_multi_model_root(mme_root, models, args.copies)
    compile_env = {"LIGHTGBM_COMPILE_TIMEOUT": str(args.compile_timeout)}
    endpoints: dict[str, dict[str, Endpoint]] = {}
    plain = measure.write_wrk_script(payload, tmp)
    for label, model in models.items():
        single_root = tmp / f"ml-single-{label}"
        place(model, single_root / "model")
        # Started first and waited for: its compile fills the cache (keyed by the model's hash) that
        # the multi-model servers' hot compiles then find.
        log(f"starting single-model {label} (compiles {model.trees} trees with lleaves unless cached)")
        server = start_server(
            args,
            f"single-model {label}",
            single_root,
            tmp / f"run-single-{label}",
            {"SAGEMAKER_MULTI_MODEL": "false", **compile_env},
        )
        endpoints[label] = {"single": Endpoint(server, {}, plain)}
    mmes = {}
    for kind, extra in MME_KINDS.items():
        mmes[kind] = start_server(
            args,
            MME_LABELS[kind],
            mme_root,
            tmp / f"run-{kind}",
            {"SAGEMAKER_MULTI_MODEL": "true", **compile_env, **extra},
        )
        for label in models:
            headers = {TARGET_HEADER: hot_name(label)}
            script = measure.write_wrk_script(payload, tmp, headers, name=f"post_{label}_hot.lua")
            endpoints[label][kind] = Endpoint(mmes[kind], headers, script)
    return mmes, endpoints


# ---------------------------------------------------------------------------- measurements


def warm_up(
    mmes: dict[str, Server],
    endpoints: dict[str, dict[str, Endpoint]],
    payload: Payload,
    tmp: Path,
    workers: int,
    timeout: float,
) -> None:
    """8 connections for 1 s on every hot endpoint, repeated on a multi-model server until every
    worker holds the warm-up and hot models (nginx may keep a connection on one worker), each
    answered far more than HOT_AFTER_REQUESTS times; then wait (/stats) until every copy
    predicts with the fully optimised compiled trees."""
    warm_script = measure.write_wrk_script(payload, tmp, {TARGET_HEADER: WARM_UP_NAME}, name="post_warm_up.lua")
    for by_kind in endpoints.values():
        measure.run_wrk(
            by_kind["single"].server.invocations_url, by_kind["single"].script, connections=8, threads=2, duration_s=1
        )
    expected = (1 + len(endpoints)) * workers  # warm-up + hot models, in every worker
    for kind, mme in mmes.items():
        started = time.monotonic()
        stats: dict = {}
        for _ in range(10):
            measure.run_wrk(mme.invocations_url, warm_script, connections=8, threads=2, duration_s=1)
            for by_kind in endpoints.values():
                measure.run_wrk(mme.invocations_url, by_kind[kind].script, connections=8, threads=2, duration_s=1)
            time.sleep(SWEEP_WAIT_S)
            stats = requests.get(f"{mme.base_url}/stats", timeout=5).json()
            if stats.get("local_models", 0) >= expected:
                break
        else:  # more traffic would not help: compiling cannot make a worker load a model
            raise BenchmarkError(
                f"{MME_LABELS[kind]}: after 10 rounds of traffic not every worker holds the hot models: {stats}"
            )
        while time.monotonic() < started + timeout:
            stats = requests.get(f"{mme.base_url}/stats", timeout=5).json()
            if stats.get("local_models", 0) >= expected and stats.get("final_compiled_models", 0) >= expected:
                break
            time.sleep(0.25)
        else:
            raise BenchmarkError(
                f"{MME_LABELS[kind]}: the hot models were not all compiled within {timeout:g} s: {stats}"
            )
        log(
            f"{MME_LABELS[kind]}: every worker holds the warm-up and hot models, compiled "
            f"({stats['final_compiled_models']} copies in {workers} workers, {time.monotonic() - started:.1f} s)"
        )


def check_predictions(
    models: dict[str, BenchModel], endpoints: dict[str, dict[str, Endpoint]], payload: Payload
) -> dict[str, float]:
    """Every server's 1,000-row answer vs booster.predict on the values as sent."""
    errors = {}
    for label, by_kind in endpoints.items():
        expected = models[label].booster.predict(payload.features)
        for endpoint in by_kind.values():
            key = f"{endpoint.name} ({label})" if endpoint.headers else endpoint.name
            errors[key] = measure.prediction_error(endpoint.server.invocations_url, payload, expected, endpoint.headers)
            log(f"{key}: 1,000-row predictions vs booster.predict: max abs diff {errors[key]:.3e}")
    return errors


def time_request(session: requests.Session, method: str, url: str, **kwargs) -> tuple[float, requests.Response]:
    started = time.perf_counter()
    response = session.request(method, url, timeout=120, **kwargs)
    return (time.perf_counter() - started) * 1e3, response


def cold_loads(
    mme: Server, models: dict[str, BenchModel], payload: Payload, root: Path, copies: int
) -> dict[str, dict[str, list[float]]]:
    """One round: N first requests through TargetModel and N POST /models per size; then unload them all.

    The unload makes the next round's requests for the same names cold again.
    """
    timings: dict[str, dict[str, list[float]]] = {label: {"target": [], "api": []} for label in models}
    with requests.Session() as session:
        session.get(f"{mme.base_url}/ping", timeout=5)  # the connection is open before the first timed request
        for label in models:
            for i in range(copies):
                name = cold_name(label, i)
                ms, response = time_request(
                    session,
                    "POST",
                    mme.invocations_url,
                    data=payload.body,
                    headers={**measure.CSV_HEADERS, TARGET_HEADER: name},
                )
                if response.status_code != 200 or len(measure.response_lines(response.text)) != payload.rows:
                    raise BenchmarkError(f"cold invoke of {name}: HTTP {response.status_code}: {response.text[:300]}")
                timings[label]["target"].append(ms)
        for label in models:
            for i in range(copies):
                name = api_name(label, i)
                body = {"model_name": name, "url": str(root / "models" / name / "model")}
                ms, response = time_request(session, "POST", f"{mme.base_url}/models", json=body)
                if response.status_code != 200:
                    raise BenchmarkError(f"POST /models {name}: HTTP {response.status_code}: {response.text[:300]}")
                timings[label]["api"].append(ms)
        for label in models:
            for i in range(copies):
                for name in (cold_name(label, i), api_name(label, i)):
                    response = session.delete(f"{mme.base_url}/models/{name}", timeout=30)
                    if response.status_code != 200:
                        raise BenchmarkError(
                            f"DELETE /models/{name}: HTTP {response.status_code}: {response.text[:300]}"
                        )
    time.sleep(1.0)  # the other worker's sweeper drops its copies (every 0.5 s)
    return timings


def hot_during_loads(
    mme: Server, endpoint: Endpoint, payload: Payload, copies: int, loaders: int, duration: float
) -> tuple[measure.WrkResult, list[float]]:
    """wrk on a hot model (1 connection) while `loaders` clients keep loading large models.

    Each client asks for a large cold copy through TargetModel (a load in whichever worker
    takes it, then one prediction) and unloads it again, over and over; returns the hot
    figures and the cold requests' latencies."""
    stop = threading.Event()
    load_ms: list[float] = []
    failures: list[str] = []

    def keep_loading(index: int) -> None:
        names = [cold_name("large", i) for i in range(copies) if i % loaders == index] or [
            cold_name("large", index % copies)
        ]
        with requests.Session() as session:
            while not stop.is_set():
                for name in names:
                    ms, response = time_request(
                        session,
                        "POST",
                        mme.invocations_url,
                        data=payload.body,
                        headers={**measure.CSV_HEADERS, TARGET_HEADER: name},
                    )
                    if response.status_code != 200:
                        failures.append(f"{name}: HTTP {response.status_code}: {response.text[:200]}")
                        return
                    load_ms.append(ms)
                    session.delete(f"{mme.base_url}/models/{name}", timeout=30)

    threads = [threading.Thread(target=keep_loading, args=(i,), daemon=True) for i in range(loaders)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)  # the loads are under way before the first timed request
        result = measure.run_wrk(
            endpoint.server.invocations_url, endpoint.script, connections=1, threads=1, duration_s=duration
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    if failures:
        raise BenchmarkError(f"{endpoint.name}: a cold load failed while measuring: {failures[0]}")
    return result, load_ms


def run_rounds(
    args: argparse.Namespace,
    mmes: dict[str, Server],
    models: dict[str, BenchModel],
    endpoints: dict[str, dict[str, Endpoint]],
    payload: Payload,
    mme_root: Path,
) -> tuple[
    dict[str, dict[str, dict[str, list[float]]]],
    dict[str, dict[str, dict[str, float]]],
    dict[tuple[str, int], dict[str, float]],
]:
    """Per round: cold loads on each multi-model server, hot figures on every server (alternating
    order), then hot figures during large loads on each multi-model server.

    Returns cold samples (kind -> size -> way, all rounds pooled), hot figures (size -> kind,
    median over rounds) and hot-during-loads figures (kind, median over rounds)."""
    cold: dict[str, dict[str, dict[str, list[float]]]] = {
        kind: {label: defaultdict(list) for label in models} for kind in mmes
    }
    hot: dict[str, dict[str, dict[str, list[float]]]] = {
        label: {kind: defaultdict(list) for kind in KINDS} for label in models
    }
    loader_counts = sorted({max(1, args.workers - 1), args.workers})
    loaded: dict[tuple[str, int], dict[str, list[float]]] = {
        (kind, loaders): defaultdict(list) for kind in mmes for loaders in loader_counts
    }
    for round_index in range(args.repeat):
        prefix = f"round {round_index + 1}/{args.repeat}"
        for kind, mme in mmes.items():
            for label, ways in cold_loads(mme, models, payload, mme_root, args.copies).items():
                for way, samples in ways.items():
                    cold[kind][label][way].extend(samples)
                    log(
                        f"{prefix} {MME_LABELS[kind]}: cold {label} via "
                        f"{'TargetModel' if way == 'target' else 'POST /models'}: "
                        f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms"
                    )
        kinds = KINDS if round_index % 2 == 0 else tuple(reversed(KINDS))
        for label in models:
            for kind in kinds:
                endpoint = endpoints[label][kind]
                result = measure.run_wrk(
                    endpoint.server.invocations_url, endpoint.script, connections=1, threads=1, duration_s=args.duration
                )
                hot[label][kind]["p50_ms"].append(result.p50_ms)
                hot[label][kind]["p99_ms"].append(result.p99_ms)
                log(f"{prefix} hot {label}: {endpoint.name}: p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms")
        for (kind, loaders), figures in loaded.items():
            result, load_ms = hot_during_loads(
                mmes[kind], endpoints["small"][kind], payload, args.copies, loaders, args.duration
            )
            figures["p50_ms"].append(result.p50_ms)
            figures["p99_ms"].append(result.p99_ms)
            figures["loads_per_s"].append(len(load_ms) / args.duration)
            figures["load_ms"].append(statistics.median(load_ms) if load_ms else math.nan)
            log(
                f"{prefix} hot small during large loads by {loaders} client(s): {MME_LABELS[kind]}: "
                f"p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms ({len(load_ms)} large loads)"
            )
    hot_medians = {
        label: {
            kind: {key: statistics.median(values) for key, values in figures.items()}
            for kind, figures in by_kind.items()
        }
        for label, by_kind in hot.items()
    }
    loaded_medians = {
        key: {name: statistics.median(values) for name, values in figures.items()} for key, figures in loaded.items()
    }
    return cold, hot_medians, loaded_medians


_LOADED = re.compile(r"model loaded: (small|large)-(cold|api)-\d+ from .* \([\d.]+ MB, ([\d.]+) ms\)")


def server_load_times(mme: Server) -> dict[str, dict[str, list[float]]]:
    """The load times the multi-model server logged for the cold models (reading + parsing + registering)."""
    found: dict[str, dict[str, list[float]]] = {label: defaultdict(list) for label in SIZES}
    for label, way, ms in _LOADED.findall(mme.processes[0].log_path.read_text(errors="replace")):
        found[label]["target" if way == "cold" else "api"].append(float(ms))
    return found


# ---------------------------------------------------------------------------- report


def _ms(value: float, digits: int = 3) -> str:
    return f"{value:,.{digits}f}"


def render(
    args: argparse.Namespace,
    models: dict[str, BenchModel],
    cold: dict[str, dict[str, dict[str, list[float]]]],
    hot: dict[str, dict[str, dict[str, float]]],
    loaded: dict[tuple[str, int], dict[str, float]],
    errors: dict[str, float],
    context: dict[str, str],
) -> str:
    lines = ["# LightGBM serving benchmark: multi-model mode", ""]
    lines += [f"- {name}: {value}" for name, value in context.items()]
    lines += [
        "",
        "Latencies in ms. Hot = 1 row at 1 connection (wrk) to a model every worker holds, compiled; "
        "single = the single-model server on the same model, compiled.",
        "",
        "| model | MME 4-thread p50 | MME 4-thread p99 | MME 1-thread p50 | MME 1-thread p99 | single p50 | single p99 "
        "| 4-thread ÷ single (p50) | 1-thread ÷ single (p50) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, model in models.items():
        mme, sync, single = (hot[label][kind] for kind in KINDS)
        lines.append(
            "| "
            + " | ".join(
                [
                    f"{label}: {model.size_bytes / 1e6:.2f} MB, {model.trees} trees",
                    _ms(mme["p50_ms"]),
                    _ms(mme["p99_ms"]),
                    _ms(sync["p50_ms"]),
                    _ms(sync["p99_ms"]),
                    _ms(single["p50_ms"]),
                    _ms(single["p99_ms"]),
                    f"{mme['p50_ms'] / single['p50_ms']:.2f}×",
                    f"{sync['p50_ms'] / single['p50_ms']:.2f}×",
                ]
            )
            + " |"
        )
    lines += [
        "",
        f"The small hot model while clients keep loading and unloading the large model ({args.workers} workers: "
        "with as many clients as workers, every worker may be busy loading at once):",
        "",
        "| workers | loading clients | hot p50 idle | hot p50 during loads | hot p99 idle | hot p99 during loads "
        "| large loads per s | large cold request, median |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (kind, loaders), figures in loaded.items():
        idle = hot["small"][kind]
        lines.append(
            "| "
            + " | ".join(
                [
                    MME_LABELS[kind],
                    str(loaders),
                    _ms(idle["p50_ms"]),
                    _ms(figures["p50_ms"]),
                    _ms(idle["p99_ms"]),
                    _ms(figures["p99_ms"]),
                    f"{figures['loads_per_s']:.1f}",
                    _ms(figures["load_ms"], 1),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "Cold loads (the first request for a model name, or POST /models), ms:",
        "",
        "| workers | model | TargetModel median | TargetModel max | POST /models median |",
        "|---|---|---:|---:|---:|",
    ]
    for kind in MME_KINDS:
        for label in models:
            ways = cold[kind][label]
            lines.append(
                f"| {MME_LABELS[kind]} | {label} | {_ms(statistics.median(ways['target']), 1)} "
                f"| {_ms(max(ways['target']), 1)} | {_ms(statistics.median(ways['api']), 1)} |"
            )
    lines += ["", "| goal | measured | target | result |", "|---|---:|---|---|"]
    small_cold = cold["mme"]["small"]["target"]
    small_median = statistics.median(small_cold)
    lines.append(
        f"| small model: cold load through TargetModel, median of {len(small_cold)} "
        f"| {small_median:.1f} ms (max {max(small_cold):.1f} ms) | ≤ {COLD_GOAL_MS:g} ms "
        f"| {report._mark(small_median <= COLD_GOAL_MS)} |"
    )
    for label in models:
        ratio = hot[label]["mme"]["p50_ms"] / hot[label]["single"]["p50_ms"]
        lines.append(
            f"| {label} model: hot MME p50 ÷ single-model p50 (both compiled) "
            f"| {ratio:.2f}× | ≤ {HOT_GOAL_RATIO:.2f}× | {report._mark(ratio <= HOT_GOAL_RATIO)} |"
        )
    worst = max(errors.values())
    lines.append(
        f"| every server: 1,000 rows, max abs diff vs booster.predict | {worst:.1e} "
        f"| ≤ {report.PREDICTION_TOLERANCE:g} | {report._mark(worst <= report.PREDICTION_TOLERANCE)} |"
    )
    return "\n".join(lines) + "\n"


def context_lines(
    args: argparse.Namespace,
    models: dict[str, BenchModel],
    mmes: dict[str, Server],
    endpoints: dict[str, dict[str, Endpoint]],
    machine: str,
) -> dict[str, str]:
    described = "; ".join(f"{label} {m.size_bytes:,} B ({m.trees} trees)" for label, m in models.items())
    single = "; ".join(
        f"{by_kind['single'].name} → predictor {predictors_in_log(by_kind['single'].server)}, ready in "
        f"{by_kind['single'].server.ready_seconds:.1f} s"
        for by_kind in endpoints.values()
    )
    pooled = args.repeat * args.copies
    logged = server_load_times(mmes["mme"])
    load_parts = "; ".join(
        f"{label} {statistics.median(logged[label][way]):.1f} ms ({'TargetModel' if way == 'target' else 'POST /models'})"
        for label in models
        for way in ("target", "api")
        if logged[label][way]
    )
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine,
        "models": f"LightGBM {lightgbm.__version__} regression, {N_FEATURES} features, {NUM_LEAVES} leaves, seed "
        f"{SEED}: {described}",
        "servers": f"{args.serve.name} with {args.workers} gunicorn workers each: multi-model twice "
        f"(SAGEMAKER_MULTI_MODEL=true, models under <root>/models/<name>/model/; 4 request threads per "
        f"worker, the default LIGHTGBM_SERVER_THREADS=4, and one with LIGHTGBM_SERVER_THREADS=1); "
        f"{single}",
        "cold load": f"{args.copies} copies per size and way per round, {args.repeat} round(s): median and max over "
        f"all {pooled} first requests (1 row, text/csv, timed by a keep-alive Python client). It "
        "includes reading and parsing the model in the worker that answered, registering it, and "
        "predicting; the other worker loads its own copy on its first request for that name "
        "(not in these figures). Model files were just written, so they are in the page cache. "
        "POST /models: load + register in one worker, no prediction. Every cold model is "
        "unloaded (DELETE /models/<name>) after each round",
        "of which the load itself": f'median of the times the server logged ("model loaded: ... ms"): '
        f"{load_parts or 'not found in the log'}",
        "hot invoke": f"wrk -t1 -c1 --latency, {args.duration:g} s per run, 1 row text/csv, after 1 s at 8 "
        f"connections on every endpoint and once /stats reports every hot copy on its fully "
        f"optimised compiled trees (final_compiled_models); median over {args.repeat} round(s), "
        "servers in alternating order",
        "during loads": "the same wrk run on the small hot model while Python clients each "
        "loop: a first request for a large cold copy through TargetModel, then "
        "DELETE /models/<name>",
    }


# ---------------------------------------------------------------------------- main


def benchmark(args: argparse.Namespace, tmp: Path) -> int:
    machine = report.machine_summary()
    log(f"working in {tmp}; {machine}")
    models = train_models(tmp / "trained", round(args.large_mb * 1e6))
    for label, model in models.items():
        log(f"trained {label}: {model.trees} trees, {model.size_bytes:,} bytes")
    payloads = write_payloads(tmp / "payloads")
    mmes, endpoints = start_all(args, tmp, models, payloads[1])
    warm_up(mmes, endpoints, payloads[1], tmp, args.workers, args.ready_timeout)
    errors = check_predictions(models, endpoints, payloads[1_000])
    cold, hot, loaded = run_rounds(args, mmes, models, endpoints, payloads[1], tmp / "ml-multi")
    text = render(args, models, cold, hot, loaded, errors, context_lines(args, models, mmes, endpoints, machine))
    print("\n" + text, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    log(f"report written to {args.output}")
    return 1 if max(errors.values()) > report.PREDICTION_TOLERANCE else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    processes.install_cleanup()
    servers.ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="lgbm-bench-mme-"))
    keep = args.keep_temp
    try:
        return benchmark(args, tmp)
    except (BenchmarkError, ServerNotReady, FileNotFoundError, requests.RequestException) as error:
        print(f"[bench-mme] FAILED: {error}", file=sys.stderr, flush=True)
        keep = True  # the server logs explain the failure
        return 1
    finally:
        processes.stop_all()
        if keep:
            log(f"kept {tmp} (models, payloads, server logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
