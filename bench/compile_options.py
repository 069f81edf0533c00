"""Which lleaves compile settings should ``serve`` use? Compile time vs prediction speed, measured.

For synthetic LightGBM models (50 features, 20,000 seeded rows; binary with 31 and 63 leaves
and 100 and 500 rounds, plus a 3-class multiclass model with 63 leaves and 100 rounds, i.e.
300 trees) and five lleaves option sets:

- ``default``: ``fblocksize=34, finline=True, fcodemodel='large'`` (what ``serve`` uses today)
- ``finline=False``
- ``fcodemodel=small``
- ``fblocksize=n_trees`` (no cache blocking)
- ``finline=False, fblocksize=n_trees``

it measures, each step in a FRESH child process (so no LLVM state, page cache of the
objects aside, carries over):

- compile: wall time of ``lleaves.Model(model_file).compile(cache=path)``, the object's size
  and the compiling process's peak RSS;
- load: wall time of the same call when ``path`` already exists (what every worker does),
  that process's peak RSS (``resource.getrusage``, taken before ``lightgbm`` is imported);
- latency: median of 2,000 single-row ``predict(row, n_jobs=1)`` calls (a different row each
  call) and median of 50 ``predict(1,000 rows, n_jobs=1)`` calls;
- correctness: max |difference| from ``Booster.predict`` on 1,000 random rows (10% missing
  values); anything above 1e-9 is flagged.

``lightgbm.Booster.predict(num_threads=1)`` is measured the same way as the baseline.
Optionally (``--tl2cgen-python``) TL2cgen/gcc is measured on one model, from an interpreter
of a throwaway venv that has ``tl2cgen`` installed (never the project's venv)::

    python3 -m venv /tmp/tl2cgen-venv && /tmp/tl2cgen-venv/bin/pip install tl2cgen numpy

Budget: the run stops starting new measurements after ``--budget-minutes`` (default 35);
if a model's default compile takes longer than 150 s, its other inlined option sets
(which redo the same optimisation) are skipped and reported as such; and an option set is
skipped on a model when its compile time on a smaller model, scaled by the leaf count, already
exceeds ``--max-compile-s`` (default 150; 0 measures everything: the inlined
``fblocksize=n_trees`` build of the 500-tree 63-leaf model then takes ~6 minutes and ~3.2 GB).

Run (about 20-30 minutes on 2 cores; ``--quick`` only the binary 63-leaf 100/500-round models)::

    .venv/bin/python bench/compile_options.py [--quick] [--tl2cgen-python /tmp/tl2cgen-venv/bin/python]

The markdown table is printed and written to ``bench/results/compile_options.md`` (ignored by git).
This is a benchmark, not a test: nothing here fails on slow figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

N_FEATURES = 50
TRAIN_ROWS = 20_000
SEED = 20_240_601
TIMING_ROWS = 2_000  # single-row calls, each on its own row
BATCH_ROWS = 1_000  # rows per batch call; also the correctness-check rows
BATCH_CALLS = 50
TOLERANCE = 1e-9
SLOW_COMPILE_S = 150.0
CHILD_TIMEOUT_S = 900.0
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "compile_options.md"


# --------------------------------------------------------------------------- specifications


@dataclass(frozen=True)
class ModelSpec:
    """One synthetic model to train."""

    objective: str  # "binary" or "multiclass"
    num_leaves: int
    rounds: int

    @property
    def name(self) -> str:
        kind = "binary" if self.objective == "binary" else "3-class"
        return f"{kind} {self.rounds}r x {self.num_leaves}l"

    @property
    def slug(self) -> str:
        return f"{self.objective}_{self.rounds}_{self.num_leaves}"


@dataclass(frozen=True)
class OptionSet:
    """Keyword arguments for ``lleaves.Model.compile``; ``fblocksize=None`` means the tree count."""

    name: str
    finline: bool = True
    fcodemodel: str = "large"
    fblocksize: int | None = 34

    def kwargs(self, n_trees: int) -> dict[str, Any]:
        return {
            "finline": self.finline,
            "fcodemodel": self.fcodemodel,
            "fblocksize": self.fblocksize if self.fblocksize is not None else n_trees,
        }


OPTION_SETS = (
    OptionSet("default"),
    OptionSet("finline=False", finline=False),
    OptionSet("fcodemodel=small", fcodemodel="small"),
    OptionSet("fblocksize=n_trees", fblocksize=None),
    OptionSet("finline=False, fblocksize=n_trees", finline=False, fblocksize=None),
)

FULL_MODELS = (
    ModelSpec("binary", 31, 100),
    ModelSpec("binary", 63, 100),
    ModelSpec("multiclass", 63, 100),
    ModelSpec("binary", 31, 500),
    ModelSpec("binary", 63, 500),
)
QUICK_MODELS = (ModelSpec("binary", 63, 100), ModelSpec("binary", 63, 500))


@dataclass
class Row:
    """One line of the report."""

    model: str
    options: str
    values: dict[str, Any] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- data and training


def features(rng: np.random.Generator, rows: int) -> np.ndarray:
    return rng.normal(size=(rows, N_FEATURES))


def scores(x: np.ndarray, rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    """A non-linear score over many features plus noise, so every round keeps finding splits."""
    z = np.roll(x, shift, axis=1)
    signal = (
        np.sin(z[:, 0] * 2)
        + z[:, 1] * z[:, 2]
        + np.abs(z[:, 3])
        - (z[:, 4] > 0.5)
        + 0.3 * np.tanh(z[:, 5:25]).sum(axis=1)
        + 0.2 * (z[:, 25:] ** 2).sum(axis=1) / 5
        - 1.0
    )
    return signal + rng.normal(scale=1.0, size=len(x))


def train(spec: ModelSpec, directory: Path) -> tuple[Path, int, float]:
    """Train and save ``model.txt``; returns its path, tree count and mean leaves per tree."""
    import lightgbm

    rng = np.random.default_rng(SEED)
    x = features(rng, TRAIN_ROWS)
    if spec.objective == "binary":
        y = (scores(x, rng) > 0).astype(np.float64)
        extra: dict[str, Any] = {}
    else:
        y = np.argmax(np.column_stack([scores(x, rng, shift) for shift in (0, 7, 19)]), axis=1)
        extra = {"num_class": 3}
    params = {
        "objective": spec.objective,
        "num_leaves": spec.num_leaves,
        "learning_rate": 0.1,
        "min_data_in_leaf": 2,
        "min_sum_hessian_in_leaf": 0.0,
        "min_gain_to_split": 0.0,
        "max_depth": -1,
        "seed": SEED,
        "deterministic": True,
        "verbose": -1,
        **extra,
    }
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=spec.rounds)
    leaves = [tree["num_leaves"] for tree in booster.dump_model()["tree_info"]]
    path = directory / spec.slug / "model.txt"
    path.parent.mkdir(parents=True)
    booster.save_model(str(path))
    return path, booster.num_trees(), float(np.mean(leaves))


def timing_rows() -> np.ndarray:
    """Rows in the training distribution with 10% missing values (the first 1,000 are checked too)."""
    rng = np.random.default_rng(SEED + 1)
    x = features(rng, TIMING_ROWS)
    x[rng.random(x.shape) < 0.1] = np.nan
    return np.ascontiguousarray(x)


# --------------------------------------------------------------------------- child-side measurements


def peak_rss_mb() -> float:
    """This process's peak RSS. Linux keeps ru_maxrss across exec, so a child reports at least the
    parent's RSS at fork time: the parent stays small (it trains in a child, never imports lightgbm)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def latencies(predict: Callable[[np.ndarray], Any], rows: np.ndarray) -> dict[str, float]:
    """Median single-row latency (µs, one call per row) and median 1,000-row latency (ms)."""
    singles = [rows[i : i + 1] for i in range(len(rows))]
    for row in singles[:200]:
        predict(row)
    single = []
    for row in singles:
        started = time.perf_counter()
        predict(row)
        single.append(time.perf_counter() - started)
    batch_rows = rows[:BATCH_ROWS]
    for _ in range(3):
        predict(batch_rows)
    batch = []
    for _ in range(BATCH_CALLS):
        started = time.perf_counter()
        predict(batch_rows)
        batch.append(time.perf_counter() - started)
    return {"single_us": statistics.median(single) * 1e6, "batch_ms": statistics.median(batch) * 1e3}


def max_abs_diff(got: np.ndarray, expected: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64).reshape(expected.shape)
    return float(np.max(np.abs(got - expected)))


def child_baseline(model_file: str, rows_file: str, expected_file: str) -> dict[str, Any]:
    """LightGBM itself: load time, RSS, latencies; writes the reference predictions."""
    import lightgbm

    rows = np.load(rows_file)
    started = time.perf_counter()
    booster = lightgbm.Booster(model_file=model_file)
    load_s = time.perf_counter() - started
    rss = peak_rss_mb()
    np.save(expected_file, booster.predict(rows[:BATCH_ROWS], num_threads=1))
    return {"load_s": load_s, "load_rss_mb": rss, **latencies(lambda data: booster.predict(data, num_threads=1), rows)}


def child_compile(model_file: str, object_file: str, options: str) -> dict[str, Any]:
    """Compile to a new cache file (the first start of a container)."""
    import lleaves

    started = time.perf_counter()
    model = lleaves.Model(model_file=model_file)
    model.compile(cache=object_file, **json.loads(options))
    compile_s = time.perf_counter() - started
    return {
        "compile_s": compile_s,
        "object_kb": Path(object_file).stat().st_size / 1024.0,
        "compile_rss_mb": peak_rss_mb(),
    }


def child_load(model_file: str, object_file: str, options: str, rows_file: str, expected_file: str) -> dict[str, Any]:
    """Load an existing cache file (what every worker does), then time and check predictions."""
    import lleaves

    rows = np.load(rows_file)
    started = time.perf_counter()
    model = lleaves.Model(model_file=model_file)
    model.compile(cache=object_file, **json.loads(options))
    load_s = time.perf_counter() - started
    rss = peak_rss_mb()
    diff = max_abs_diff(model.predict(rows[:BATCH_ROWS], n_jobs=1), np.load(expected_file))
    return {
        "load_s": load_s,
        "load_rss_mb": rss,
        "max_diff": diff,
        **latencies(lambda data: model.predict(data, n_jobs=1), rows),
    }


def child_tl2cgen(model_file: str, work_dir: str, rows_file: str, expected_file: str) -> dict[str, Any]:
    """TL2cgen: LightGBM model -> C -> gcc shared library; compile time and latencies."""
    import tl2cgen
    import treelite

    rows = np.load(rows_file)
    libpath = str(Path(work_dir) / "model.so")
    started = time.perf_counter()
    model = treelite.frontend.load_lightgbm_model(model_file)
    cores = os.cpu_count() or 1
    tl2cgen.export_lib(model, toolchain="gcc", libpath=libpath, params={"parallel_comp": cores}, nthread=cores)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    predictor = tl2cgen.Predictor(libpath, nthread=1)
    load_s = time.perf_counter() - started

    def predict(data: np.ndarray) -> np.ndarray:
        return predictor.predict(tl2cgen.DMatrix(data))

    diff = max_abs_diff(predict(rows[:BATCH_ROWS]), np.load(expected_file))
    return {
        "compile_s": compile_s,
        "object_kb": Path(libpath).stat().st_size / 1024.0,
        "load_s": load_s,
        "load_rss_mb": peak_rss_mb(),
        "max_diff": diff,
        "tl2cgen": tl2cgen.__version__,
        **latencies(predict, rows),
    }


def child_train(objective: str, num_leaves: str, rounds: str, directory: str) -> dict[str, Any]:
    spec = ModelSpec(objective, int(num_leaves), int(rounds))
    model_file, n_trees, leaves = train(spec, Path(directory))
    return {"model_file": str(model_file), "n_trees": n_trees, "leaves": leaves}


CHILD_COMMANDS: dict[str, Callable[..., dict[str, Any]]] = {
    "train": child_train,
    "baseline": child_baseline,
    "compile": child_compile,
    "load": child_load,
    "tl2cgen": child_tl2cgen,
}


def child_main(argv: list[str]) -> None:
    """``compile_options.py _child COMMAND ARGS...``: print one JSON line with the measurements."""
    result = CHILD_COMMANDS[argv[0]](*argv[1:])
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent side


class Budget:
    """Wall-clock allowance for the whole run."""

    def __init__(self, minutes: float) -> None:
        self.deadline = time.monotonic() + minutes * 60.0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def run_child(args: list[str], timeout: float, python: str = sys.executable) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; raises RuntimeError with the reason on failure."""
    command = [python, str(Path(__file__).resolve()), "_child", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(timeout, 1.0), env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {tail[:160]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_option(
    model_file: Path, n_trees: int, option: OptionSet, files: dict[str, Path], budget: Budget
) -> dict[str, Any]:
    """Compile in one child, load+predict in another; returns the merged measurements."""
    object_file = files["dir"] / f"{option.name.replace(' ', '').replace(',', '_').replace('=', '-')}.o"
    options = json.dumps(option.kwargs(n_trees))
    timeout = min(CHILD_TIMEOUT_S, budget.remaining())
    values = run_child(["compile", str(model_file), str(object_file), options], timeout)
    values |= run_child(
        ["load", str(model_file), str(object_file), options, str(files["rows"]), str(files["expected"])],
        min(CHILD_TIMEOUT_S, max(budget.remaining(), 60.0)),
    )
    return values


History = dict[str, tuple[int, float, str]]  # option set -> (total leaves, compile s, model) of its largest compile


def projected_skip(option: OptionSet, total_leaves: int, history: History, max_compile_s: float) -> str:
    """A reason to skip when this option set, scaled by leaf count from a smaller model, would exceed the limit.

    Compile time grows at least linearly with the number of leaves, so the projection is a lower bound."""
    if not max_compile_s or option.name not in history:
        return ""
    leaves, seconds, model = history[option.name]
    projected = seconds * total_leaves / leaves
    if projected <= max_compile_s:
        return ""
    return f"skipped: projected >= {projected:.0f}s from {seconds:.0f}s on {model} (limit {max_compile_s:.0f}s)"


def measure_model(
    spec: ModelSpec,
    model_file: Path,
    n_trees: int,
    rows_file: Path,
    budget: Budget,
    rows: list[Row],
    history: History,
    max_compile_s: float,
) -> None:
    """The LightGBM baseline and every option set for one model, appended to ``rows`` as they finish."""
    files = {"dir": model_file.parent, "rows": rows_file, "expected": model_file.parent / "expected.npy"}
    baseline = Row(spec.name, "LightGBM Booster (baseline)")
    baseline.values = run_child(["baseline", str(model_file), str(rows_file), str(files["expected"])], 300)
    rows.append(baseline)
    default_compile_s: float | None = None
    for option in OPTION_SETS:
        row = Row(spec.name, option.name)
        rows.append(row)
        if budget.remaining() < 30:
            row.note = "skipped: time budget used up"
            continue
        if default_compile_s is not None and default_compile_s > SLOW_COMPILE_S and option.finline:
            row.note = f"skipped: default compile took {default_compile_s:.0f}s > {SLOW_COMPILE_S:.0f}s"
            continue
        row.note = projected_skip(option, n_trees * spec.num_leaves, history, max_compile_s)
        if row.note:
            log(f"  {spec.name}: {option.name}: {row.note}")
            continue
        log(f"  {spec.name}: {option.name} ...")
        try:
            row.values = measure_option(model_file, n_trees, option, files, budget)
        except RuntimeError as error:
            row.note = f"failed: {error}"
            if option.name == "default" and "timed out" in str(error):
                default_compile_s = float("inf")
            continue
        history[option.name] = (n_trees * spec.num_leaves, row.values["compile_s"], spec.name)
        if option.name == "default":
            default_compile_s = row.values["compile_s"]
            if default_compile_s > SLOW_COMPILE_S:
                row.note = f"slow: {default_compile_s:.0f}s > {SLOW_COMPILE_S:.0f}s, not repeated"
        if row.values.get("max_diff", 0.0) > TOLERANCE:
            row.note = (row.note + "; " if row.note else "") + "DISAGREES with LightGBM"
        log(f"    {format_values(row.values)}")


def measure_tl2cgen(python: str, spec: ModelSpec, model_file: Path, rows_file: Path, budget: Budget) -> Row:
    row = Row(spec.name, "TL2cgen + gcc, nthread=1")
    work_dir = model_file.parent / "tl2cgen"
    work_dir.mkdir(exist_ok=True)
    try:
        row.values = run_child(
            ["tl2cgen", str(model_file), str(work_dir), str(rows_file), str(model_file.parent / "expected.npy")],
            min(600.0, budget.remaining()),
            python,
        )
        row.options = f"TL2cgen {row.values.pop('tl2cgen')} + gcc, nthread=1"
        if row.values["max_diff"] > TOLERANCE:
            row.note = "DISAGREES with LightGBM"
    except (RuntimeError, OSError) as error:
        row.note = f"failed: {error}"
    return row


def format_values(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in values.items()
    )


# --------------------------------------------------------------------------- report


COLUMNS = (  # (header, key, format)
    ("compile s", "compile_s", "{:.1f}"),
    ("compile RSS MB", "compile_rss_mb", "{:.0f}"),
    ("object KB", "object_kb", "{:.0f}"),
    ("load ms", "load_s", "ms"),
    ("load RSS MB", "load_rss_mb", "{:.0f}"),
    ("1 row µs", "single_us", "{:.1f}"),
    ("1,000 rows ms", "batch_ms", "{:.2f}"),
    ("max abs diff", "max_diff", "{:.1e}"),
)


def cell(values: dict[str, Any], key: str, fmt: str) -> str:
    if key not in values:
        return "–"
    if fmt == "ms":
        return f"{values[key] * 1e3:.1f}"
    return fmt.format(values[key])


def markdown(rows: list[Row], header: list[str]) -> str:
    baselines = {row.model: row.values for row in rows if row.options.startswith("LightGBM")}
    lines = [
        *header,
        "",
        "| model | options | " + " | ".join(title for title, _, _ in COLUMNS) + " | 1-row speed-up | note |",
        "|---|---|" + "---:|" * (len(COLUMNS) + 1) + "---|",
    ]
    for row in rows:
        base = baselines.get(row.model, {}).get("single_us")
        speedup = f"{base / row.values['single_us']:.1f}x" if base and "single_us" in row.values else "–"
        cells = [cell(row.values, key, fmt) for _, key, fmt in COLUMNS]
        lines.append(f"| {row.model} | {row.options} | " + " | ".join(cells) + f" | {speedup} | {row.note} |")
    return "\n".join(lines) + "\n"


Trained = tuple[ModelSpec, Path, int, float]  # spec, model.txt, tree count, mean leaves per tree


def header_lines(args: argparse.Namespace, trained: list[Trained], took_s: float) -> list[str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("lightgbm", "lleaves", "llvmlite"))
    shapes = "; ".join(f"{spec.name}: {trees} trees, {leaves:.1f} leaves/tree" for spec, _, trees, leaves in trained)
    return [
        "# lleaves compile options: compile time vs prediction speed",
        "",
        f"- command: `.venv/bin/python bench/compile_options.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        f"- machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; {versions}",
        f"- run took {took_s / 60:.1f} min; date {time.strftime('%Y-%m-%d %H:%M')}",
        f"- models ({N_FEATURES} features, {TRAIN_ROWS:,} training rows): {shapes}",
        "- every figure comes from a fresh process; compile = `Model(file).compile(cache=new path)`, "
        "load = same call with the cache present; latencies are medians, n_jobs=1 / num_threads=1;"
        f" 1 row = {TIMING_ROWS:,} calls, 1,000 rows = {BATCH_CALLS} calls; max abs diff vs Booster.predict"
        f" on {BATCH_ROWS:,} rows",
        *(
            [
                "- TL2cgen: compile = `load_lightgbm_model` + `export_lib` (gcc, one translation unit per core,"
                " built in parallel); load = `Predictor(lib, nthread=1)`; every predict call builds a `DMatrix`"
            ]
            if args.tl2cgen_python
            else []
        ),
    ]


# --------------------------------------------------------------------------- main


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only binary 63-leaf models, 100 and 500 rounds")
    parser.add_argument("--budget-minutes", type=float, default=35.0, help="stop starting measurements after this")
    parser.add_argument(
        "--max-compile-s",
        type=float,
        default=SLOW_COMPILE_S,
        help="skip an option set whose compile projected from a smaller model exceeds this (0: never)",
    )
    parser.add_argument("--tl2cgen-python", help="python of a throwaway venv with tl2cgen installed (optional)")
    parser.add_argument("--tl2cgen-model", default="binary_500_63", help="model slug to measure with TL2cgen")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the markdown table")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (models, objects)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    started = time.monotonic()
    budget = Budget(args.budget_minutes)
    work = Path(tempfile.mkdtemp(prefix="compile_options_"))
    try:
        rows_file = work / "rows.npy"
        np.save(rows_file, timing_rows())
        trained: list[Trained] = []
        for spec in QUICK_MODELS if args.quick else FULL_MODELS:
            done = run_child(["train", spec.objective, str(spec.num_leaves), str(spec.rounds), str(work)], 600)
            model_file, n_trees, leaves = Path(done["model_file"]), done["n_trees"], done["leaves"]
            log(f"trained {spec.name}: {n_trees} trees, {leaves:.1f} leaves/tree")
            trained.append((spec, model_file, n_trees, leaves))
        report: list[Row] = []
        history: History = {}
        interrupted = False
        try:
            for spec, model_file, n_trees, _ in trained:
                measure_model(spec, model_file, n_trees, rows_file, budget, report, history, args.max_compile_s)
                if args.tl2cgen_python and spec.slug == args.tl2cgen_model:
                    log(f"  {spec.name}: TL2cgen ...")
                    report.append(measure_tl2cgen(args.tl2cgen_python, spec, model_file, rows_file, budget))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: still write what was measured
            interrupted = True
            log("interrupted: writing the partial table")
            for row in report:
                row.note = row.note or ("" if row.values else "not run (interrupted)")
        header = header_lines(args, trained, time.monotonic() - started)
        text = markdown(report, header + (["- **INTERRUPTED: partial results**"] if interrupted else []))
        print(text)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        log(f"written to {args.output}")
        if interrupted:
            raise SystemExit(130)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
    else:
        main(sys.argv[1:])
