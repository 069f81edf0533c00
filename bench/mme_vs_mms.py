"""Multi-model endpoints at scale: our serve against Multi Model Server + the SageMaker Inference
Toolkit in multi-model mode, on 1,000 LightGBM models, in one interleaved run.

    .venv/bin/python bench/mme_vs_mms.py               # 1,000 models, 2 rounds of 60 s per server (about 7 minutes)
    .venv/bin/python bench/mme_vs_mms.py --quick       # 200 models, 1 round of 20 s (about 2.5 minutes)
    .venv/bin/python bench/mme_vs_mms.py --soak 600    # ours only: worker memory over 10 minutes (about 11 minutes)
    options: --models N, --duration S, --warmup S, --repeat K, --cold N, --skip-mms, --serve PATH

1. Models: three bases trained on bench/workload.py's rows and parameters (100, 500 and 2,000
   trees), and N distinct models made from them (60 % small, 30 % medium, 10 % large: many small
   models and a few large ones, which hold 15, 37 and 48 % of the bytes): tree 0 of model i has
   (i + 1) x 1e-3 added to every leaf, so every model answers differently and a mix-up is an error.
   Each is a model.tar.gz holding model.txt: ours reads `<root>/models/<name>.tar.gz` through
   `X-Amzn-SageMaker-Target-Model: <name>.tar.gz`; for MMS each archive is extracted to
   `<root>/models/<name>/model/`, as SageMaker does, and loaded with `POST /models`. MMS runs
   examples/toolkit/pandas_inference.py (model_fn, input_fn, predict_fn, output_fn: the SageMaker
   documentation's pattern) as the toolkit's container-wide code, `<root>/models/code/`.
2. Budget: a first server of ours loads one model of each size and says what each costs against
   its budget (`GET /models/<name>`'s measured memoryBytes);
   LIGHTGBM_MODEL_CACHE_MB (per worker) is set so that a fifth of the N models fit. MMS gets the
   same total, 2 x the per-worker budget (each of our 2 workers may hold a copy of every model):
   its cost per loaded model is measured once (whole-server PSS after loading one model of each
   size, minus before, / 3), and the router below keeps floor(2 x budget / cost) models loaded.
3. The router: on SageMaker the platform, not MMS, loads models: on a request for a model that
   is not loaded it calls `POST /models`, then `POST /models/<name>/invoke`, and unloads the least
   recently used model (`DELETE /models/<name>`) when the instance is full. The benchmark plays
   that part for MMS (one load per model at a time, the others wait; a 409 counts as loaded).
4. Rounds (--repeat, 2; the order of the servers flips every round): 8 client threads, one
   keep-alive connection each, send one CSV row per request (text/csv, Accept text/csv) with
   the model drawn Zipf(1.1) over the N models (a fixed seeded sequence per round, the same
   for both servers) for --warmup (20 % of --duration) + --duration (60 s) seconds; only the
   requests that complete in the last --duration seconds are counted (throughput, latencies). Every answer of every
   phase is compared with LightGBM's own `Booster(model_str=...).predict` (1e-6). Hot requests
   found their model resident (MMS: in the router's set; ours: in an LRU of the server's budget
   and sizes kept by the client, a model of the server's registry; the first request in the
   other worker loads that worker's copy and still counts as hot); cold ones loaded it or
   waited for its load.
5. Cold loads, after the rounds: per size, the first request for N (--cold, 10) models never
   requested before, one at a time on an otherwise idle server with its budget full: what a
   caller waits for (MMS: the router's eviction, `POST /models` and the first invoke).
6. Memory at the end of each round: RSS and PSS summed over each server's whole process tree
   (ours: serve, nginx, gunicorn and its workers, compile jobs; MMS: java and its Python
   workers), models resident (ours: /stats models_loaded; MMS: the router's), models per GB of PSS.
7. Hot p50 against our single-model server, before the rounds: the small model at 1 connection
   (wrk), in our multi-model server once both workers hold it compiled, and in a single-model
   server of ours on the same model, alternating, 3 runs each.

--soak S (ours only): the same traffic for S seconds; every 5 s each gunicorn worker's VmRSS and
/stats are sampled; the report compares the first and the last minute per worker and the
highest RSS with the budget plus the worker's RSS before any model was loaded, and lists the
workers' RSS and /stats once a minute.

The report is printed and written to bench/results/mme_vs_mms.md (soak: mme_soak.md). Targets
(ours against MMS): >= 3x the throughput, cold loads <= 0.2x, >= 2x the models per GB, no
errors, and our hot p50 within 10 % of our single-model server's. They inform; wrong answers
make the exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import math
import os
import re
import shutil
import statistics
import sys
import tarfile
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import lightgbm
import numpy as np
import requests

import harness
import measure
import multi_model
import processes
import report
import servers
import startup
import user_code
import workload
from measure import BenchmarkError
from servers import Server

RESULTS_FILE = servers.BENCH_DIR / "results" / "mme_vs_mms.md"
SOAK_RESULTS_FILE = servers.BENCH_DIR / "results" / "mme_soak.md"
MMS_SCRIPT = user_code.EXAMPLES / "pandas_inference.py"
OURS = "ours"
MMS = "MMS + toolkit"
TREES = {"small": workload.N_TREES, "medium": 500, "large": 2_000}
SHARES = {"small": 0.6, "medium": 0.3, "large": 0.1}
OFFSET_STEP = 1e-3  # added to tree 0's leaves per model index: models differ by far more than TOLERANCE
TOLERANCE = 1e-6
ZIPF_EXPONENT = 1.1
RESIDENT_FRACTION = 0.2  # the budget holds about this share of the models
ROWS = 64  # distinct single-row bodies the requests cycle through
SEQUENCE_LENGTH = 400_000  # requests drawn per round; a faster round wraps around
REQUEST_TIMEOUT_S = 120.0
HOT_RUNS = 3
SOAK_SAMPLE_S = 5.0
CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}
THROUGHPUT_GOAL = 3.0
COLD_GOAL = 0.2
DENSITY_GOAL = 2.0


def log(message: str) -> None:
    print(f"[bench-mme-mms] {message}", flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 models, 1 round of 20 s, 3 cold loads per size")
    parser.add_argument("--models", type=int, metavar="N", help="models in the Zipf population (1,000; quick 200)")
    parser.add_argument(
        "--duration", type=float, metavar="S", help="counted seconds per server and round (60; quick 20)"
    )
    parser.add_argument("--warmup", type=float, metavar="S", help="uncounted seconds before each round (20 %% of it)")
    parser.add_argument("--repeat", type=int, metavar="K", help="rounds per server, interleaved (2; quick 1)")
    parser.add_argument("--cold", type=int, metavar="N", help="fresh models per size for the cold loads (10; quick 3)")
    parser.add_argument("--connections", type=int, default=8, help="client connections during the rounds (8)")
    parser.add_argument("--workers", type=int, default=2, help="workers of each server (2)")
    parser.add_argument(
        "--soak", type=float, metavar="S", help="ours only: S seconds of traffic, worker memory sampled"
    )
    parser.add_argument("--skip-mms", action="store_true", help="measure ours only")
    parser.add_argument("--serve", type=Path, default=servers.DEFAULT_SERVE, help="our serve executable")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds for /ping and for compiles")
    parser.add_argument("--output", type=Path, help="the markdown report (results/mme_vs_mms.md, soak mme_soak.md)")
    args = parser.parse_args(argv)
    args.models = args.models or (200 if args.quick else 1_000)
    args.duration = args.duration or (20.0 if args.quick else 60.0)
    args.warmup = args.duration * 0.2 if args.warmup is None else args.warmup
    args.repeat = args.repeat or (1 if args.quick else 2)
    args.cold = args.cold or (3 if args.quick else 10)
    args.output = args.output or (SOAK_RESULTS_FILE if args.soak else RESULTS_FILE)
    if args.models < len(TREES) or args.repeat < 1 or args.cold < 1 or args.connections < 1:
        parser.error("--models must be at least 3, --repeat, --cold and --connections at least 1")
    return args


# ---------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """One model of the benchmark: its name, which base it derives from, and its offset."""

    index: int
    name: str
    size: str
    offset: float

    @property
    def archive(self) -> str:
        """Its archive's name under the models directory: the TargetModel ours is asked for."""
        return f"{self.name}.tar.gz"


def train_bases(directory: Path) -> dict[str, str]:
    """Model text per size. small is bench/run.py's model itself (its compiled trees are cached);
    medium and large are the first 500 and all 2,000 trees of one training on the same rows."""
    small_file, _ = workload.train_model(directory / "small", np.random.default_rng(workload.SEED))
    rng = np.random.default_rng(workload.SEED)  # the same rows as workload.train_model
    x = workload._features(rng, workload.TRAIN_ROWS)
    params = {
        "objective": "regression",
        "num_leaves": workload.NUM_LEAVES,
        "learning_rate": 0.1,
        "seed": workload.SEED,
        "verbose": -1,
    }
    booster = lightgbm.train(params, lightgbm.Dataset(x, workload._target(x, rng)), num_boost_round=TREES["large"])
    return {
        "small": small_file.read_text(),
        "medium": booster.model_to_string(num_iteration=TREES["medium"]),
        "large": booster.model_to_string(num_iteration=TREES["large"]),
    }


def shifted_text(base: str, offset: float) -> str:
    """``base`` with ``offset`` added to every leaf of tree 0, and tree 0's entry in
    ``tree_sizes`` corrected (LightGBM and our server's file check both read it)."""
    if offset == 0:
        return base
    start = base.index("\nTree=0\n") + 1
    end = base.index("\nTree=1\n", start) + 1 if "\nTree=1\n" in base else base.index("\nend of trees", start)
    tree = base[start:end]
    values = re.search(r"^leaf_value=(.*)$", tree, re.M)
    if values is None:
        raise ValueError("tree 0 has no leaf_value line")
    shifted = " ".join(repr(float(value) + offset) for value in values.group(1).split())
    new_tree = tree[: values.start(1)] + shifted + tree[values.end(1) :]
    sizes = re.search(r"^tree_sizes=(\d+)", base, re.M)
    if sizes is None:
        raise ValueError("the model text has no tree_sizes line")
    new_size = str(int(sizes.group(1)) + len(new_tree) - len(tree))
    return base[: sizes.start(1)] + new_size + base[sizes.end(1) : start] + new_tree + base[end:]


def population(count: int) -> list[ModelSpec]:
    """``count`` models, sizes by SHARES in a seeded random order (popularity is drawn apart)."""
    counts = {size: round(count * share) for size, share in SHARES.items()}
    counts["small"] += count - sum(counts.values())
    sizes = [size for size, n in counts.items() for _ in range(n)]
    np.random.default_rng(workload.SEED).shuffle(sizes)
    return [ModelSpec(i, f"{size}-{i:04d}", size, (i + 1) * OFFSET_STEP) for i, size in enumerate(sizes)]


def fresh_specs(first_index: int, per_size: int) -> list[ModelSpec]:
    """Models outside the Zipf population, never requested before the cold loads."""
    specs: list[ModelSpec] = []
    for size in TREES:
        for _ in range(per_size):
            index = first_index + len(specs)
            specs.append(ModelSpec(index, f"cold-{size}-{index:04d}", size, (index + 1) * OFFSET_STEP))
    return specs


def hot_spec(index: int) -> ModelSpec:
    """The small base model itself (no offset): the single-model server serves the same file."""
    return ModelSpec(index, "hot-small", "small", 0.0)


def write_archive(text: str, archive: Path) -> None:
    """A model.tar.gz as SageMaker stores it: model.txt at the archive's root (gzip level 6, `tar czf`'s)."""
    data = text.encode()
    info = tarfile.TarInfo("model.txt")
    info.size = len(data)
    info.mtime = 0
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.addfile(info, fileobj=_BytesReader(data))


class _BytesReader:
    """The file object tarfile.addfile reads a member from, without copying ``data`` again."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else self.position + size
        chunk = self.view[self.position : end].tobytes()
        self.position += len(chunk)
        return chunk


def lay_out(specs: Sequence[ModelSpec], bases: dict[str, str], ours_models: Path, mms_models: Path | None) -> None:
    """Each model's archive under ours_models; extracted to mms_models/<name>/model/ as SageMaker does."""
    ours_models.mkdir(parents=True, exist_ok=True)

    def one(spec: ModelSpec) -> None:
        archive = ours_models / spec.archive
        write_archive(shifted_text(bases[spec.size], spec.offset), archive)
        if mms_models is not None:
            with tarfile.open(archive) as tar:
                tar.extractall(mms_models / spec.name / "model", filter="data")

    with ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0))) as pool:  # zlib releases the GIL
        list(pool.map(one, specs))
    if mms_models is not None:  # the toolkit's container-wide code directory in multi-model mode
        (mms_models / "code").mkdir(parents=True, exist_ok=True)
        shutil.copy(MMS_SCRIPT, mms_models / "code" / "inference.py")


@dataclass
class Requests:
    """The single-row bodies every request picks from, and the values the servers parse from them."""

    bodies: list[bytes]
    features: np.ndarray
    payload: workload.Payload  # the first row as a file, for wrk


def request_rows(directory: Path) -> Requests:
    """ROWS seeded rows of bench/workload.py's features, each a body as CSVSerializer sends it."""
    rows = workload._features(np.random.default_rng(workload.SEED + 7), ROWS)
    bodies = [workload.csv_body(row[None, :]) for row in rows]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rows_1.csv").write_bytes(bodies[0])
    payload = workload.Payload(rows=1, path=directory / "rows_1.csv", body=bodies[0])
    features = np.vstack([np.loadtxt(body.decode().splitlines(), delimiter=",", ndmin=2) for body in bodies])
    return Requests(bodies, features, payload)


class Expected:
    """LightGBM's own answers for every row, per model: computed when a model is first checked, kept."""

    def __init__(self, specs: Sequence[ModelSpec], bases: dict[str, str], features: np.ndarray) -> None:
        self.specs = {spec.index: spec for spec in specs}
        self.bases = bases
        self.features = features
        self.answers: dict[int, np.ndarray] = {}

    def _compute(self, index: int) -> np.ndarray:
        spec = self.specs[index]
        booster = lightgbm.Booster(model_str=shifted_text(self.bases[spec.size], spec.offset))
        return np.asarray(booster.predict(self.features, num_threads=1), dtype=np.float64)

    def table(self, indices: Iterable[int]) -> dict[int, np.ndarray]:
        """Answers for ``indices`` (LightGBM loads models outside the GIL: two at a time)."""
        missing = sorted(set(indices) - self.answers.keys())
        with ThreadPoolExecutor(max_workers=2) as pool:
            for index, answers in zip(missing, pool.map(self._compute, missing)):
                self.answers[index] = answers
        return self.answers


# ---------------------------------------------------------------------------- clients


class Connection:
    """One keep-alive HTTP/1.1 connection (http.client costs the client far less per request
    than requests, which matters with 8 client threads on the servers' 2 cores)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.http: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body); (0, the exception) when the connection failed, reopened on the next call."""
        if self.http is None:
            self.http = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            self.http.request(method, path, body=body, headers=headers)
            response = self.http.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return 0, f"{type(error).__name__}: {error}".encode()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


class Target(Protocol):
    """A server as the client threads see it: one call per request, hot or cold."""

    label: str
    server: Server

    def call(self, connection: Connection, spec: ModelSpec, body: bytes) -> tuple[int, bytes, bool]:
        """(status, answer body, cold: the model was not resident when the request came)."""
        ...


class OursTarget:
    """Ours loads lazily itself: one request, `X-Amzn-SageMaker-Target-Model: <name>.tar.gz`.

    Hot or cold is not in the answer, so the client keeps an LRU of the registry's budget with
    the sizes the server reported, as the server's registry does (by request order)."""

    def __init__(self, server: Server, sizes: dict[str, int], budget_bytes: int) -> None:
        self.label = OURS
        self.server = server
        self.sizes = sizes
        self.budget = budget_bytes
        self.resident: OrderedDict[str, int] = OrderedDict()
        self.in_use = 0
        self.lock = threading.Lock()

    def _cold(self, spec: ModelSpec) -> bool:
        with self.lock:
            if spec.name in self.resident:
                self.resident.move_to_end(spec.name)
                return False
            size = self.sizes[spec.size]
            while self.resident and self.in_use + size > self.budget:
                self.in_use -= self.resident.popitem(last=False)[1]
            self.resident[spec.name] = size
            self.in_use += size
            return True

    def call(self, connection: Connection, spec: ModelSpec, body: bytes) -> tuple[int, bytes, bool]:
        cold = self._cold(spec)
        headers = {**CSV, multi_model.TARGET_HEADER: spec.archive}
        status, answer = connection.send("POST", "/invocations", body, headers)
        return status, answer, cold


LOADING, LOADED, UNLOADING = "loading", "loaded", "unloading"


@dataclass
class Slot:
    """A model the router has loaded, is loading or is unloading (each counts against capacity)."""

    state: str
    pins: int = 0  # requests using the model now: it is not evicted under them


class RouterError(RuntimeError):
    """The router could not load a model: (status, body) of MMS's answer."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"POST /models: HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class MmsRouter:
    """What SageMaker does in front of a multi-model container, for MMS: at most ``capacity``
    models loaded; a request for another one unloads the least recently used idle model
    (`DELETE /models/<name>`), loads its own (`POST /models`; one load per model at a time,
    other requests for it wait) and invokes it (`POST /models/<name>/invoke`)."""

    def __init__(self, server: Server, models_dir: Path, capacity: int) -> None:
        self.label = MMS
        self.server = server
        self.models_dir = models_dir
        self.capacity = capacity
        self.slots: OrderedDict[str, Slot] = OrderedDict()
        self.changed = threading.Condition()
        self.loads = 0
        self.unloads = 0

    def resident(self) -> int:
        with self.changed:
            return sum(1 for slot in self.slots.values() if slot.state == LOADED)

    def _next_step(self, name: str) -> tuple[str, str | None]:
        """Under the lock: ("hot"|"load"|"evict"|"wait", the victim to evict). Pins the model for hot and load."""
        slot = self.slots.get(name)
        if slot is not None:
            if slot.state != LOADED:
                return "wait", None
            slot.pins += 1
            self.slots.move_to_end(name)
            return "hot", None
        if len(self.slots) < self.capacity:
            self.slots[name] = Slot(LOADING, pins=1)
            return "load", None
        victim = next((n for n, s in self.slots.items() if s.state == LOADED and s.pins == 0), None)
        if victim is None:
            return "wait", None
        self.slots[victim].state = UNLOADING  # still counted until MMS has unloaded it
        return "evict", victim

    def acquire(self, connection: Connection, name: str) -> bool:
        """Make ``name`` loaded and pin it; True when the request had to load it or wait for it."""
        cold = False
        while True:
            with self.changed:
                step, victim = self._next_step(name)
                if step == "wait":
                    cold = True
                    self.changed.wait()
                    continue
            if step == "hot":
                return cold
            if step == "evict" and victim is not None:
                self._unload(connection, victim)
                continue
            self._load(connection, name)
            return True

    def _load(self, connection: Connection, name: str) -> None:
        url = str(self.models_dir / name / "model")
        body = json.dumps({"model_name": name, "url": url}).encode()
        status, answer = connection.send("POST", "/models", body, {"Content-Type": "application/json"})
        with self.changed:
            if status in (200, 409):  # 409: already loaded
                self.slots[name].state = LOADED
                self.loads += 1
            else:
                del self.slots[name]
            self.changed.notify_all()
        if status not in (200, 409):
            raise RouterError(status, answer)

    def _unload(self, connection: Connection, name: str) -> None:
        status, answer = connection.send("DELETE", f"/models/{name}", None, {})
        if status != 200:  # MMS may still hold it: the memory figures would say so
            log(f"{MMS}: DELETE /models/{name}: HTTP {status}: {answer[:200]!r}")
        with self.changed:
            del self.slots[name]
            self.unloads += 1
            self.changed.notify_all()

    def release(self, name: str) -> None:
        with self.changed:
            self.slots[name].pins -= 1
            self.changed.notify_all()

    def unload_all(self, connection: Connection) -> None:
        for name in list(self.slots):
            self._unload(connection, name)

    def call(self, connection: Connection, spec: ModelSpec, body: bytes) -> tuple[int, bytes, bool]:
        try:
            cold = self.acquire(connection, spec.name)
        except RouterError as error:
            return error.status, error.body, True
        try:
            status, answer = connection.send("POST", f"/models/{spec.name}/invoke", body, CSV)
        finally:
            self.release(spec.name)
        return status, answer, cold


# ---------------------------------------------------------------------------- rounds


@dataclass
class RequestLog:
    """Every request one client thread sent, as columns (a soak sends millions)."""

    started: array = field(default_factory=lambda: array("d"))
    seconds: array = field(default_factory=lambda: array("d"))
    model: array = field(default_factory=lambda: array("i"))
    row: array = field(default_factory=lambda: array("i"))
    cold: array = field(default_factory=lambda: array("b"))
    status: array = field(default_factory=lambda: array("h"))
    value: array = field(default_factory=lambda: array("d"))
    failures: list[str] = field(default_factory=list)

    def add(self, started: float, seconds: float, spec: ModelSpec, row: int, answer: tuple[int, bytes, bool]) -> None:
        status, body, cold = answer
        value = math.nan
        if status == 200:
            try:
                value = float(body)
            except ValueError:
                pass
        if (status != 200 or math.isnan(value)) and len(self.failures) < 5:
            self.failures.append(f"{spec.name}: HTTP {status}: {body[:200]!r}")
        self.started.append(started)
        self.seconds.append(seconds)
        self.model.append(spec.index)
        self.row.append(row)
        self.cold.append(cold)
        self.status.append(status)
        self.value.append(value)


@dataclass
class Outcome:
    """All requests of one phase as numpy columns, with how many answers were wrong."""

    started: np.ndarray
    seconds: np.ndarray
    model: np.ndarray
    cold: np.ndarray
    wrong: np.ndarray
    failures: list[str]

    @property
    def errors(self) -> int:
        return int(self.wrong.sum())


def checked(logs: Sequence[RequestLog], expected: Expected) -> Outcome:
    """Join the threads' logs and compare every answer with LightGBM's (status 200, |diff| <= TOLERANCE)."""
    model = np.concatenate([np.frombuffer(each.model, dtype=np.int32) for each in logs])
    row = np.concatenate([np.frombuffer(each.row, dtype=np.int32) for each in logs])
    value = np.concatenate([np.frombuffer(each.value, dtype=np.float64) for each in logs])
    status = np.concatenate([np.frombuffer(each.status, dtype=np.int16) for each in logs])
    answers = expected.table(np.unique(model).tolist())
    wanted = np.array([answers[m][r] for m, r in zip(model.tolist(), row.tolist())], dtype=np.float64)
    wrong = (status != 200) | ~(np.abs(value - wanted) <= TOLERANCE)
    failures = [message for each in logs for message in each.failures]
    for index in np.flatnonzero(wrong & (status == 200))[:3].tolist():
        failures.append(f"model {model[index]} row {row[index]}: answered {value[index]!r}, LightGBM {wanted[index]!r}")
    return Outcome(
        started=np.concatenate([np.frombuffer(each.started, dtype=np.float64) for each in logs]),
        seconds=np.concatenate([np.frombuffer(each.seconds, dtype=np.float64) for each in logs]),
        model=model,
        cold=np.concatenate([np.frombuffer(each.cold, dtype=np.int8) for each in logs]).astype(bool),
        wrong=wrong,
        failures=failures,
    )


def zipf_sequence(models: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(model index, row) per request: ranks drawn with p_k ∝ k^-1.1, rank k -> a model fixed by
    the benchmark's seed (so the popular models are the same in every round and for both servers)."""
    ranks = np.arange(1, models + 1, dtype=np.float64)
    weights = ranks**-ZIPF_EXPONENT
    by_rank = np.random.default_rng(workload.SEED).permutation(models)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(models, size=length, p=weights / weights.sum())
    return by_rank[drawn].astype(np.int32), rng.integers(0, ROWS, size=length, dtype=np.int32)


def drive(
    target: Target,
    specs: Sequence[ModelSpec],
    sequence: tuple[np.ndarray, np.ndarray],
    bodies: Sequence[bytes],
    connections: int,
    seconds: float,
) -> list[RequestLog]:
    """``connections`` threads take the next request of ``sequence`` until ``seconds`` have passed."""
    models, rows = sequence
    counter = itertools.count()  # next() is atomic under the GIL: each request is taken once
    deadline = time.perf_counter() + seconds
    logs = [RequestLog() for _ in range(connections)]

    def client(request_log: RequestLog) -> None:
        connection = Connection(target.server.base_url)
        try:
            while (now := time.perf_counter()) < deadline:
                i = next(counter) % len(models)
                spec, row = specs[models[i]], int(rows[i])
                answer = target.call(connection, spec, bodies[row])
                request_log.add(now, time.perf_counter() - now, spec, row, answer)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(each,), daemon=True) for each in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT_S + 60)
    return logs


def percentile_ms(seconds: np.ndarray, q: float) -> float:
    return float(np.percentile(seconds, q) * 1e3) if len(seconds) else math.nan


def stats_of(server: Server) -> dict:
    return requests.get(f"{server.base_url}/stats", timeout=10).json()


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, children of any of its threads: MMS's java starts its
    Python workers, and our workers their compile jobs, from threads other than the main
    one, whose children startup.process_tree (the main thread's /proc children list) does not see."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread or the process has just exited
            continue
        for child in children:
            found += descendants(int(child))
    return found


def tree_memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS summed over ``pid`` and its descendants (smaps_rollup), and the compile jobs' PSS."""
    totals = {"rss": 0.0, "pss": 0.0, "jobs_pss": 0.0, "jobs": 0.0}
    for each in descendants(pid):
        try:
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in rollup.splitlines()[1:]}
        totals["rss"] += fields.get("Rss", 0.0)
        totals["pss"] += fields.get("Pss", 0.0)
        if b"compilation.job" in startup.cmdline(each):
            totals["jobs_pss"] += fields.get("Pss", 0.0)
            totals["jobs"] += 1
    return totals


def counters(target: Target) -> dict[str, float]:
    """Loads and evictions so far (ours: /stats, also hits, misses and compiles; MMS: the router's)."""
    if isinstance(target, MmsRouter):
        return {"loads": float(target.loads), "evictions": float(target.unloads)}
    stats = stats_of(target.server)
    return {key: float(stats.get(key, 0)) for key in ("loads", "evictions", "hits", "misses", "compiles_started")}


def resident_models(target: Target) -> int:
    if isinstance(target, MmsRouter):
        return target.resident()
    return int(stats_of(target.server)["models_loaded"])


def run_round(
    args: argparse.Namespace,
    target: Target,
    specs: Sequence[ModelSpec],
    sequence: tuple[np.ndarray, np.ndarray],
    bodies: Sequence[bytes],
    expected: Expected,
) -> dict[str, float]:
    """One server's round: warm-up + counted window; its figures, every answer checked."""
    before = counters(target)
    started = time.perf_counter()
    logs = drive(target, specs, sequence, bodies, args.connections, args.warmup + args.duration)
    memory = tree_memory_mb(target.server.processes[0].popen.pid)
    resident = resident_models(target)
    outcome = checked(logs, expected)
    window_start = started + args.warmup
    ends = outcome.started + outcome.seconds
    counted = (ends >= window_start) & (ends <= window_start + args.duration)  # completed in the window
    hot = counted & ~outcome.cold
    cold = counted & outcome.cold
    figures = {
        "rps": float(counted.sum()) / args.duration,
        "hot_p50_ms": percentile_ms(outcome.seconds[hot], 50),
        "hot_p99_ms": percentile_ms(outcome.seconds[hot], 99),
        "cold_p50_ms": percentile_ms(outcome.seconds[cold], 50),
        "hot_share": float(hot.sum()) / max(1, int(counted.sum())),
        "requests": float(len(outcome.seconds)),
        "errors": float(outcome.errors),
        "resident": float(resident),
        "rss_mb": memory["rss"],
        "pss_mb": memory["pss"],
        "jobs_pss_mb": memory["jobs_pss"],
        "jobs": memory["jobs"],
        "per_gb": resident / (memory["pss"] / 1024),
    }
    after = counters(target)
    figures.update({key: after[key] - before.get(key, 0.0) for key in after})
    if "hits" in figures:
        figures["server_hit_share"] = figures["hits"] / max(1.0, figures["hits"] + figures["misses"])
    for message in outcome.failures[:5]:
        log(f"{target.label}: wrong answer: {message}")
    return figures


def cold_loads(
    target: Target, specs: Sequence[ModelSpec], requests_: Requests, expected: Expected
) -> tuple[dict[str, list[float]], int]:
    """The first request for each of ``specs``, one at a time: latencies in ms per size, and errors."""
    request_log = RequestLog()
    connection = Connection(target.server.base_url)
    connection.send("GET", "/ping", None, {})  # the connection is open before the first timed request
    for number, spec in enumerate(specs):
        row = number % ROWS
        started = time.perf_counter()
        answer = target.call(connection, spec, requests_.bodies[row])
        request_log.add(started, time.perf_counter() - started, spec, row, answer)
    connection.close()
    outcome = checked([request_log], expected)
    for message in outcome.failures[:5]:
        log(f"{target.label}: cold load: wrong answer: {message}")
    latencies: dict[str, list[float]] = {size: [] for size in TREES}
    for spec, seconds in zip(specs, outcome.seconds.tolist()):
        latencies[spec.size].append(seconds * 1e3)
    return latencies, outcome.errors


# ---------------------------------------------------------------------------- servers


def start_multi(args: argparse.Namespace, root: Path, run_dir: Path, budget_mb: int, name: str) -> Server:
    """Ours in multi-model mode with a per-worker budget; its compile cache is the run's own, so
    every run compiles the hot models afresh and none of the 1,000 objects is left behind."""
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "SAGEMAKER_MULTI_MODEL": "true",
        "LIGHTGBM_MODEL_CACHE_MB": str(budget_mb),
        "LIGHTGBM_COMPILE_CACHE": str(run_dir / "compile-cache"),
    }
    server = servers.start_ours(args.serve, root, run_dir, args.workers, args.ready_timeout, env, name=name)
    log(f"{name} ready in {server.ready_seconds:.1f} s at {server.base_url} (budget {budget_mb} MB per worker)")
    return server


def stop(server: Server) -> None:
    for process in reversed(server.processes):
        process.stop()


def measured_sizes(args: argparse.Namespace, setup: Setup, run_dir: Path) -> dict[str, int]:
    """What one model of each size costs against our budget, as a server of ours measured it at
    load (`GET /models/<name>` memoryBytes). Before compiling: a hot model's compiled trees add
    to it later, which the budget then also counts, so somewhat fewer than a fifth stay resident."""
    server = start_multi(args, setup.ours_root, run_dir, 64 * 1024, "ours (sizing)")
    sizes = {}
    try:
        connection = Connection(server.base_url)
        for size in TREES:
            spec = next(spec for spec in setup.specs if spec.size == size)
            headers = {**CSV, multi_model.TARGET_HEADER: spec.archive}
            status, answer = connection.send("POST", "/invocations", setup.requests.bodies[0], headers)
            if status != 200:
                raise BenchmarkError(f"ours (sizing): {spec.archive}: HTTP {status}: {answer[:300]!r}")
            described = requests.get(f"{server.base_url}/models/{spec.archive}", timeout=10).json()
            sizes[size] = int(described["memoryBytes"])
        connection.close()
    finally:
        stop(server)
    return sizes


def start_mms_multi_model(bin_dir: Path, root: Path, run_dir: Path, workers: int) -> Server:
    """MMS + toolkit as the toolkit starts them with SAGEMAKER_MULTI_MODEL=true (bench/mms_mme_peer.py)."""
    port = user_code.mms_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_BASE_DIR": str(root),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),  # the toolkit's default_workers_per_model
        "TMPDIR": str(run_dir),  # as user_code.start_mms: MMS's pid file
    }
    server = Server(name=MMS, base_url=f"http://127.0.0.1:{port}")
    argv = [str(bin_dir / "python"), str(servers.BENCH_DIR / "mms_mme_peer.py"), str(run_dir / "mms.properties")]
    server.processes.append(processes.start("MMS (multi-model)", argv, run_dir / "mms.log", env=env, cwd=run_dir))
    server.ready_seconds = processes.wait_for_ping(server.base_url, server.processes, 180)
    log(f"{MMS} ready in {server.ready_seconds:.1f} s at {server.base_url}")
    return server


def mms_cost_mb(
    server: Server, models_dir: Path, specs: Sequence[ModelSpec], requests_: Requests
) -> tuple[float, float]:
    """(whole-server PSS with no model, PSS per loaded model): one model of each size loaded and
    invoked, minus before, / 3."""
    pid = server.processes[0].popen.pid
    before = tree_memory_mb(pid)["pss"]
    router = MmsRouter(server, models_dir, capacity=len(TREES))
    connection = Connection(server.base_url)
    chosen = [next(spec for spec in specs if spec.size == size) for size in TREES]
    for spec in chosen:
        status, answer, _ = router.call(connection, spec, requests_.bodies[0])
        if status != 200:
            raise BenchmarkError(f"{MMS}: {spec.name}: HTTP {status}: {answer[:300]!r}")
    time.sleep(1.0)
    after = tree_memory_mb(pid)["pss"]
    router.unload_all(connection)
    connection.close()
    time.sleep(1.0)  # the unloaded models' workers exit
    return before, (after - before) / len(chosen)


# ---------------------------------------------------------------------------- hot p50 against single-model


def wait_hot_compiled(server: Server, script: Path, workers: int, timeout: float) -> float:
    """Traffic until every worker holds the hot model, then until every copy is on its fully optimised
    compiled trees (/stats, as bench/multi_model.py waits); returns the seconds it took."""
    started = time.monotonic()
    for _ in range(10):
        measure.run_wrk(server.invocations_url, script, connections=8, threads=2, duration_s=1)
        time.sleep(multi_model.SWEEP_WAIT_S)
        if stats_of(server).get("local_models", 0) >= workers:
            break
    while time.monotonic() < started + timeout:
        stats = stats_of(server)
        if stats.get("local_models", 0) >= workers and stats.get("final_compiled_models", 0) >= workers:
            return time.monotonic() - started
        time.sleep(0.25)
    raise BenchmarkError(f"ours: the hot model was not compiled in every worker within {timeout:g} s: {stats}")


def hot_against_single(
    args: argparse.Namespace, tmp: Path, multi: Server, base_small: str, requests_: Requests, hot: ModelSpec
) -> dict[str, float]:
    """1 row at 1 connection (wrk): the hot small model in the multi-model server and the
    single-model server on the same file, both compiled, alternating, HOT_RUNS runs each."""
    root = tmp / "ml-single"
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.txt").write_text(base_small)
    single = servers.start_ours(args.serve, root, tmp, args.workers, args.ready_timeout, {}, name="ours (single-model)")
    headers = {multi_model.TARGET_HEADER: hot.archive}
    multi_script = measure.write_wrk_script(requests_.payload, tmp, headers, name="post_hot.lua")
    single_script = measure.write_wrk_script(requests_.payload, tmp)
    seconds = wait_hot_compiled(multi, multi_script, args.workers, args.ready_timeout)
    log(f"ours: hot model compiled in every worker after {seconds:.1f} s")
    measure.run_wrk(single.invocations_url, single_script, connections=8, threads=2, duration_s=1)
    runs: dict[str, list[float]] = {"multi": [], "single": []}
    duration = 3.0 if args.quick else 5.0
    for index in range(HOT_RUNS):
        order = (("multi", multi, multi_script), ("single", single, single_script))
        for kind, server, script in order if index % 2 == 0 else reversed(order):
            result = measure.run_wrk(server.invocations_url, script, connections=1, threads=1, duration_s=duration)
            runs[kind].append(result.p50_ms)
            log(f"hot p50, run {index + 1}: {kind}-model {result.p50_ms:.3f} ms")
    stop(single)
    multi_p50, single_p50 = statistics.median(runs["multi"]), statistics.median(runs["single"])
    return {"multi_p50_ms": multi_p50, "single_p50_ms": single_p50, "ratio": multi_p50 / single_p50}


# ---------------------------------------------------------------------------- comparison


@dataclass
class Setup:
    """What every phase shares: the models, the request rows, the answers to expect."""

    tmp: Path
    bases: dict[str, str]
    specs: list[ModelSpec]
    fresh: list[ModelSpec]
    hot: ModelSpec
    requests: Requests
    expected: Expected
    ours_root: Path
    mms_root: Path | None


def prepare(args: argparse.Namespace, tmp: Path, with_mms: bool, fresh_per_size: int) -> Setup:
    """Train, lay out the models for ours (and MMS), write the request rows."""
    started = time.monotonic()
    bases = train_bases(tmp / "trained")
    specs = population(args.models)
    fresh = fresh_specs(len(specs), fresh_per_size)
    hot = hot_spec(len(specs) + len(fresh))
    ours_root = tmp / "ml-ours"
    mms_root = tmp / "ml-mms" if with_mms else None
    lay_out([*specs, *fresh, hot], bases, ours_root / "models", mms_root / "models" if mms_root else None)
    requests_ = request_rows(tmp / "payloads")
    expected = Expected([*specs, *fresh, hot], bases, requests_.features)
    sizes = {size: len(text.encode()) for size, text in bases.items()}
    log(
        f"{len(specs)} models + {len(fresh)} fresh ones laid out in {time.monotonic() - started:.0f} s; "
        "model files: " + ", ".join(f"{size} {TREES[size]} trees {sizes[size] / 1e6:.2f} MB" for size in TREES)
    )
    return Setup(tmp, bases, specs, fresh, hot, requests_, expected, ours_root, mms_root)


def budget_mb(specs: Sequence[ModelSpec], sizes: dict[str, int]) -> int:
    """Per-worker LIGHTGBM_MODEL_CACHE_MB holding RESIDENT_FRACTION of the population's bytes."""
    total = sum(sizes[spec.size] for spec in specs)
    return max(1, math.ceil(total * RESIDENT_FRACTION / (1024 * 1024)))


def interleaved_rounds(
    args: argparse.Namespace, setup: Setup, targets: list[Target]
) -> dict[str, list[dict[str, float]]]:
    """--repeat rounds, each server once per round, the order flipping every round."""
    rounds: dict[str, list[dict[str, float]]] = {target.label: [] for target in targets}
    for index in range(args.repeat):
        sequence = zipf_sequence(len(setup.specs), SEQUENCE_LENGTH, workload.SEED + 100 + index)
        for target in targets if index % 2 == 0 else list(reversed(targets)):
            figures = run_round(args, target, setup.specs, sequence, setup.requests.bodies, setup.expected)
            rounds[target.label].append(figures)
            log(
                f"round {index + 1}/{args.repeat} {target.label}: {figures['rps']:,.1f} req/s, hot p50 "
                f"{figures['hot_p50_ms']:.2f} ms p99 {figures['hot_p99_ms']:.2f} ms, hot share "
                f"{figures['hot_share']:.1%}, {figures['resident']:.0f} resident, PSS {figures['pss_mb']:,.0f} MB, "
                f"{figures['errors']:.0f} errors of {figures['requests']:,.0f}"
            )
    return rounds


def compare(args: argparse.Namespace, tmp: Path, failed: list[int]) -> str:
    machine = report.machine_summary()
    started = time.monotonic()
    setup = prepare(args, tmp, with_mms=not args.skip_mms, fresh_per_size=args.cold)
    sizes = measured_sizes(args, setup, tmp / "run-sizing")
    budget = budget_mb(setup.specs, sizes)
    log("ours: budget per model " + ", ".join(f"{size} {sizes[size]:,} B" for size in TREES) + f" -> {budget} MB")
    multi = start_multi(args, setup.ours_root, tmp / "run-ours", budget, "ours (multi-model)")
    hot = hot_against_single(args, tmp, multi, setup.bases["small"], setup.requests, setup.hot)
    targets: list[Target] = [OursTarget(multi, sizes, budget * 1024 * 1024)]
    mms_context = ""
    if not args.skip_mms and setup.mms_root is not None:
        bin_dir = user_code.ensure_mms()
        mms = start_mms_multi_model(bin_dir, setup.mms_root, tmp / "run-mms", args.workers)
        base, cost = mms_cost_mb(mms, setup.mms_root / "models", setup.specs, setup.requests)
        capacity = max(1, math.floor(args.workers * budget / cost))
        log(f"{MMS}: {base:,.0f} MB PSS with no model, {cost:,.0f} MB per loaded model -> the router keeps {capacity}")
        targets.append(MmsRouter(mms, setup.mms_root / "models", capacity))
        mms_context = (
            f"{base:,.0f} MB of PSS with no model loaded, {cost:,.0f} MB more per loaded model (measured) -> "
            f"at most {capacity} loaded"
        )
    rounds = interleaved_rounds(args, setup, targets)
    if mms_context:
        ours_pss = _median(rounds[OURS], "pss_mb")
        mms_context += (
            f" (within the whole-server PSS ours used, {ours_pss:,.0f} MB, MMS would hold "
            f"{max(0, math.floor((ours_pss - base) / cost))})"
        )
    cold: dict[str, dict[str, list[float]]] = {}
    cold_errors = 0
    for target in targets:
        cold[target.label], errors = cold_loads(target, setup.fresh, setup.requests, setup.expected)
        cold_errors += errors
        log(
            f"{target.label}: cold loads "
            + ", ".join(f"{s} {statistics.median(v):.1f} ms" for s, v in cold[target.label].items())
        )
    errors = cold_errors + sum(int(f["errors"]) for each in rounds.values() for f in each)
    if errors:
        failed.append(errors)
    context = context_lines(args, setup, sizes, budget, mms_context)
    context["run time"] = f"{(time.monotonic() - started) / 60:.1f} min"
    context["machine"] = machine
    return render(args, context, rounds, cold, hot, cold_errors)


def _megabytes(sizes: dict[str, int]) -> str:
    return ", ".join(f"{size} {sizes[size] / 2**20:.2f} MB" for size in TREES)


def context_lines(
    args: argparse.Namespace, setup: Setup, sizes: dict[str, int], budget: int, mms_context: str
) -> dict[str, str]:
    """The report's context: what was measured, how, and the budget both servers got."""
    counts = {size: sum(spec.size == size for spec in setup.specs) for size in TREES}
    files = {size: len(text.encode()) for size, text in setup.bases.items()}
    models = ", ".join(f"{counts[size]} × {size} ({TREES[size]:,} trees)" for size in TREES)
    total_mb = sum(sizes[spec.size] for spec in setup.specs) / 2**20
    budget_text = (
        f"ours: LIGHTGBM_MODEL_CACHE_MB={budget} per worker, {RESIDENT_FRACTION:.0%} of the models' {total_mb:,.0f} MB "
        f"as ours counts them ({_megabytes(sizes)})"
    )
    if mms_context:
        budget_text += f"; MMS: the same total ({args.workers} × {budget} MB): {mms_context}"
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "models": f"LightGBM {lightgbm.__version__} regression, {workload.N_FEATURES} features, "
        f"{workload.NUM_LEAVES} leaves; {len(setup.specs):,} models: {models}; model files {_megabytes(files)}; "
        "each a model.tar.gz holding model.txt, tree 0's leaves shifted by 1e-3 × its index",
        "budget": budget_text,
        "servers": f"{args.workers} workers each: ours `{args.serve.name}` (SAGEMAKER_MULTI_MODEL=true, defaults "
        "otherwise: 4 request threads per worker, hot models compiled in the background into the run's own cache); "
        f"{MMS}: multi-model-server {mms_version()} with sagemaker-inference in multi-model mode "
        "(mme-mms.properties, default_workers_per_model from SAGEMAKER_MODEL_SERVER_WORKERS, the toolkit's "
        f"default handler service, {MMS_SCRIPT.relative_to(servers.REPO_DIR)} as the container-wide code)",
        "method": f"{args.repeat} round(s), order flipping; per server and round {args.warmup:g} s warm-up + "
        f"{args.duration:g} s counted, {args.connections} connections (Python http.client threads), 1 CSV row "
        f"per request, TargetModel drawn Zipf({ZIPF_EXPONENT}) over {len(setup.specs):,} models; medians over rounds",
    }


def mms_version() -> str:
    found = list((user_code.MMS_VENV / "lib").glob("python*/site-packages/multi_model_server-*.dist-info"))
    return found[0].name.removesuffix(".dist-info").split("-")[-1] if found else "?"


# ---------------------------------------------------------------------------- report


def _median(rounds: list[dict[str, float]], key: str) -> float:
    values = [each[key] for each in rounds if key in each and not math.isnan(each[key])]
    return statistics.median(values) if values else math.nan


def _cell(value: float, digits: int) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _judged(ratio: float, goal: float, higher: bool) -> str:
    if math.isnan(ratio):
        return "—"
    return report._mark(ratio >= goal if higher else ratio <= goal)


def _pooled(cold: dict[str, list[float]]) -> list[float]:
    return [value for values in cold.values() for value in values]


def render(
    args: argparse.Namespace,
    context: dict[str, str],
    rounds: dict[str, list[dict[str, float]]],
    cold: dict[str, dict[str, list[float]]],
    hot: dict[str, float],
    cold_errors: int,
) -> str:
    lines = ["# Multi-model endpoints: ours vs Multi Model Server + SageMaker Inference Toolkit", ""]
    lines += [f"- {name}: {value}" for name, value in context.items()]
    with_mms = MMS in rounds
    ours_cold = _pooled(cold[OURS])
    mms_cold = _pooled(cold[MMS]) if with_mms else []
    rows = [
        ("requests/s, 8 connections", "rps", 1, THROUGHPUT_GOAL, True),
        ("hot p50 (ms)", "hot_p50_ms", 2, None, False),
        ("hot p99 (ms)", "hot_p99_ms", 2, None, False),
        ("share of requests hot", "hot_share", 3, None, True),
        ("cold requests during the rounds, p50 (ms)", "cold_p50_ms", 1, None, False),
        ("models resident at the end of a round", "resident", 0, None, True),
        ("whole-server RSS (MB)", "rss_mb", 0, None, False),
        ("whole-server PSS (MB)", "pss_mb", 0, None, False),
        ("… of which compile jobs (MB PSS)", "jobs_pss_mb", 0, None, False),
        ("models resident per GB of PSS", "per_gb", 1, DENSITY_GOAL, True),
    ]
    lines += [
        "",
        "Rounds (medians over rounds); ratio = ours ÷ MMS.",
        "",
        "| metric | MMS + toolkit | ours | ours ÷ MMS | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for label, key, digits, goal, higher in rows:
        ours = _median(rounds[OURS], key)
        mms = _median(rounds[MMS], key) if with_mms else math.nan
        ratio = ours / mms if with_mms and mms else math.nan
        target = "—" if goal is None else f"{'≥' if higher else '≤'} {goal:g}×"
        result = "—" if goal is None else _judged(ratio, goal, higher)
        lines.append(
            f"| {label} | {_cell(mms, digits)} | {_cell(ours, digits)} | {_cell(ratio, 2)} | {target} | {result} |"
        )
    for q in (50, 99):
        ours = float(np.percentile(ours_cold, q))
        mms = float(np.percentile(mms_cold, q)) if mms_cold else math.nan
        ratio = ours / mms if mms_cold else math.nan
        lines.append(
            f"| cold load, fresh model, p{q} (ms) | {_cell(mms, 1)} | {_cell(ours, 1)} | {_cell(ratio, 3)} "
            f"| ≤ {COLD_GOAL:g}× | {_judged(ratio, COLD_GOAL, False)} |"
        )
    ours_errors = sum(int(f["errors"]) for f in rounds[OURS])
    ours_requests = sum(int(f["requests"]) for f in rounds[OURS])
    mms_errors = sum(int(f["errors"]) for f in rounds[MMS]) if with_mms else 0
    mms_requests = sum(int(f["requests"]) for f in rounds[MMS]) if with_mms else 0
    lines.append(
        f"| errors (non-200 or ≠ LightGBM ± {TOLERANCE:g}) / answers checked, rounds + cold loads "
        f"| {f'{mms_errors:,} / {mms_requests + len(mms_cold):,}' if with_mms else '—'} "
        f"| {ours_errors:,} / {ours_requests + len(ours_cold):,} | — | 0 | {report._mark(ours_errors + cold_errors == 0)} |"
    )
    lines.append(
        f"| hot p50, 1 connection (wrk): multi-model ÷ single-model, small model compiled "
        f"| — | {hot['multi_p50_ms']:.3f} ÷ {hot['single_p50_ms']:.3f} ms | {hot['ratio']:.2f} "
        f"| ≤ {multi_model.HOT_GOAL_RATIO:.2f} | {_judged(hot['ratio'], multi_model.HOT_GOAL_RATIO, False)} |"
    )
    lines += _cold_table(cold)
    lines += _round_table(rounds)
    return "\n".join(lines) + "\n"


def _cold_table(cold: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = [
        "",
        "Cold loads: the first request for a model never requested before, one at a time, budget full (ms):",
        "",
        "| model | " + " | ".join(f"{label} p50 | {label} p99" for label in cold) + " | ours ÷ MMS (p50) |",
        "|---|" + "---:|" * (2 * len(cold) + 1),
    ]
    for size in [*TREES, "all"]:
        cells = []
        medians = {}
        for label, by_size in cold.items():
            values = _pooled(by_size) if size == "all" else by_size[size]
            medians[label] = float(np.percentile(values, 50))
            cells += [f"{medians[label]:,.1f}", f"{float(np.percentile(values, 99)):,.1f}"]
        ratio = medians[OURS] / medians[MMS] if MMS in medians else math.nan
        count = len(_pooled(cold[OURS])) if size == "all" else len(cold[OURS][size])
        lines.append(f"| {size} ({count}) | " + " | ".join(cells) + f" | {_cell(ratio, 3)} |")
    return lines


ROUND_COLUMNS = (  # (heading, key, digits)
    ("req/s", "rps", 1),
    ("hot p50 ms", "hot_p50_ms", 2),
    ("hot p99 ms", "hot_p99_ms", 2),
    ("hot share", "hot_share", 3),
    ("server's hit share", "server_hit_share", 3),
    ("resident", "resident", 0),
    ("RSS MB", "rss_mb", 0),
    ("PSS MB", "pss_mb", 0),
    ("compile jobs", "jobs", 0),
    ("loads", "loads", 0),
    ("evictions", "evictions", 0),
    ("compiles started", "compiles_started", 0),
    ("requests", "requests", 0),
    ("errors", "errors", 0),
)


def _round_table(rounds: dict[str, list[dict[str, float]]]) -> list[str]:
    lines = [
        "",
        "Every round, warm-up included in the counts (ours: loads and evictions from /stats, counting each "
        "worker's copies, and hit share = hits / (hits + misses); MMS: the router's loads and unloads):",
        "",
        "| round | server | " + " | ".join(heading for heading, _, _ in ROUND_COLUMNS) + " |",
        "|---:|---|" + "---:|" * len(ROUND_COLUMNS),
    ]
    for label, each in rounds.items():
        for index, figures in enumerate(each):
            cells = [_cell(figures.get(key, math.nan), digits) for _, key, digits in ROUND_COLUMNS]
            lines.append(f"| {index + 1} | {label} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------------------- soak


SOAK_STATS = ("models_loaded", "bytes_in_use", "loads", "evictions", "hits", "misses", "compiles_started")
Sample = tuple[float, dict[int, float], dict]  # (seconds since the start, VmRSS MB per worker pid, /stats)


def worker_pids(server: Server) -> list[int]:
    """The gunicorn workers: gunicorn processes whose parent is gunicorn (bench/memory.py's rule)."""
    tree = descendants(server.processes[0].popen.pid)
    gunicorns = {pid for pid in tree if b"gunicorn" in startup.cmdline(pid)}
    found = []
    for pid in gunicorns:
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent in gunicorns:
            found.append(pid)
    return sorted(found)


def vm_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return math.nan
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else math.nan


def sample_forever(server: Server, stop_event: threading.Event, samples: list[Sample]) -> None:
    """Every SOAK_SAMPLE_S: (seconds since start, each worker's VmRSS, /stats) until ``stop_event``."""
    started = time.monotonic()
    while not stop_event.wait(SOAK_SAMPLE_S):
        rss = {pid: vm_rss_mb(pid) for pid in worker_pids(server)}
        samples.append((time.monotonic() - started, rss, stats_of(server)))


def soak(args: argparse.Namespace, tmp: Path, failed: list[int]) -> str:
    machine = report.machine_summary()
    setup = prepare(args, tmp, with_mms=False, fresh_per_size=0)
    sizes = measured_sizes(args, setup, tmp / "run-sizing")
    budget = budget_mb(setup.specs, sizes)
    server = start_multi(args, setup.ours_root, tmp / "run-ours", budget, "ours (multi-model)")
    time.sleep(1.0)
    overhead = {pid: vm_rss_mb(pid) for pid in worker_pids(server)}
    log("worker RSS before any model: " + ", ".join(f"{pid} {mb:.0f} MB" for pid, mb in overhead.items()))
    target = OursTarget(server, sizes, budget * 1024 * 1024)
    samples: list[Sample] = []
    stop_event = threading.Event()
    sampler = threading.Thread(target=sample_forever, args=(server, stop_event, samples), daemon=True)
    sampler.start()
    sequence = zipf_sequence(len(setup.specs), SEQUENCE_LENGTH, workload.SEED + 100)
    logs = drive(target, setup.specs, sequence, setup.requests.bodies, args.connections, args.soak)
    stop_event.set()
    sampler.join(30)
    outcome = checked(logs, setup.expected)
    for message in outcome.failures[:5]:
        log(f"soak: wrong answer: {message}")
    if outcome.errors:
        failed.append(outcome.errors)
    context = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine,
        "traffic": f"{args.soak:g} s, {args.connections} connections, Zipf({ZIPF_EXPONENT}) over {len(setup.specs):,} "
        f"models ({', '.join(f'{size} {sizes[size] / 2**20:.2f} MB' for size in TREES)} against the budget), "
        f"{len(outcome.seconds):,} requests ({len(outcome.seconds) / args.soak:,.0f}/s), "
        f"{outcome.errors:,} errors, every answer checked against LightGBM",
        "budget": f"LIGHTGBM_MODEL_CACHE_MB={budget} per worker ({RESIDENT_FRACTION:.0%} of the models), {args.workers} workers",
    }
    return render_soak(args, context, overhead, samples, budget)


def _mean(values: list[float]) -> float:
    return statistics.mean(values) if values else math.nan


def _worker_row(pid: int, samples: list[Sample], window: float, start_mb: float, budget: int) -> str:
    """One worker: RSS at start, mean over the first and the last window, growth, highest, limit."""
    end = samples[-1][0]
    early = _mean([rss[pid] for at, rss, _ in samples if pid in rss and at <= window])
    late = _mean([rss[pid] for at, rss, _ in samples if pid in rss and at >= end - window])
    highest = max(rss[pid] for _, rss, _ in samples if pid in rss)
    limit = start_mb + budget
    within = "—" if math.isnan(limit) else report._mark(highest <= limit)
    growth = (late / early - 1) * 100
    cells = [_cell(start_mb, 0), _cell(early, 0), _cell(late, 0), "—" if math.isnan(growth) else f"{growth:.1f} %"]
    return (
        f"| {pid}{' (new)' if math.isnan(start_mb) else ''} | "
        + " | ".join([*cells, f"{highest:,.0f}", _cell(limit, 0), within])
        + " |"
    )


def render_soak(
    args: argparse.Namespace, context: dict[str, str], overhead: dict[int, float], samples: list[Sample], budget: int
) -> str:
    """Per worker: RSS at start, mean over the first and the last minute, growth, highest; then
    the workers' RSS and /stats once a minute."""
    window = min(60.0, args.soak / 3)
    lines = ["# Multi-model soak: our workers' memory under Zipf traffic", ""]
    lines += [f"- {name}: {value}" for name, value in context.items()]
    lines += [
        f"- windows: first and last {window:g} s, samples every {SOAK_SAMPLE_S:g} s; limit = the budget + the "
        "worker's RSS before any model was loaded",
        "",
        "| worker pid | RSS at start (MB) | first window mean | last window mean | growth | highest | limit | within |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    if not samples:
        return "\n".join(lines) + "\n"
    pids = sorted({pid for _, rss, _ in samples for pid in rss})
    lines += [_worker_row(pid, samples, window, overhead.get(pid, math.nan), budget) for pid in pids]
    lines += [
        "",
        "| s | " + " | ".join(f"worker {pid} RSS MB" for pid in pids) + " | " + " | ".join(SOAK_STATS) + " |",
        "|---:|" + "---:|" * (len(pids) + len(SOAK_STATS)),
    ]
    every = max(1, round(60 / SOAK_SAMPLE_S))
    for at, rss, stats in [*samples[every - 1 :: every], *([samples[-1]] if len(samples) % every else [])]:
        cells = [_cell(rss.get(pid, math.nan), 0) for pid in pids] + [f"{stats.get(k, 0):,}" for k in SOAK_STATS]
        lines.append(f"| {at:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    failed: list[int] = []  # wrong answers: the exit code says so
    body: Callable[[Path], str] = (
        (lambda tmp: soak(args, tmp, failed)) if args.soak else (lambda tmp: compare(args, tmp, failed))
    )
    code = harness.run("lgbm-bench-mme-mms-", args.output, body)
    return code or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
