"""Pickled models: ours served from the joblib file, against the same trees as text, and against the
usual AWS route (an inference.py that joblib.loads the model and calls predict_proba on Multi Model
Server + the SageMaker Inference Toolkit), in one run.

    .venv/bin/python bench/pickles.py [--quick] [--repeat K] [--skip-mms]

Two models, each served several ways, 2 workers each, interleaved rounds, medians:

- an ``LGBMClassifier`` (11 features, 100 trees, 31 leaves): ours from ``model.joblib``; ours
  from the same trees saved as text (``booster_.save_model``); MMS + toolkit with an inference.py
  that ``joblib.load``s it and answers ``predict_proba(...)[:, 1]``;
- a ``Pipeline`` (``ColumnTransformer``: a ``SimpleImputer`` over the 11 number columns, a
  ``OneHotEncoder`` over 2 text columns; then an ``LGBMClassifier``, 100 trees): ours from its
  joblib file; MMS + toolkit with the same kind of inference.py (CSV read into a DataFrame with
  the Pipeline's column names).

Every answer is checked against the object's own ``predict_proba`` (1e-9) before measuring. The
report goes to stdout and bench/results/pickles.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from collections import defaultdict
from collections.abc import Sequence
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "program"))
from lightgbm_container.packages import use_pickle_packages

use_pickle_packages()  # scikit-learn before LightGBM (lightgbm_container/packages.py)

import joblib  # noqa: E402
import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder  # noqa: E402

import harness  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
import servers  # noqa: E402
import startup  # noqa: E402
import user_code  # noqa: E402
from lightgbm_container.builtin.handler import BuiltinOptions, LightGBMHandler  # noqa: E402
from lightgbm_container.contract.handler import InferenceRequest  # noqa: E402
from lightgbm_container.model.derived import derive  # noqa: E402
from servers import Server  # noqa: E402
from workload import Payload  # noqa: E402

RESULTS_FILE = servers.BENCH_DIR / "results" / "pickles.md"
SEED = 20_261_206
NUMBERS = [f"n{i}" for i in range(11)]
TEXTS = ["color", "size"]

#: The usual AWS route: joblib.load in model_fn, predict_proba in predict_fn (numbers only).
AWS_SCRIPT = """
import io
import os

import joblib
import numpy as np
import pandas as pd


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def input_fn(input_data, content_type):
    return pd.read_csv(io.StringIO(input_data), header=None)


def predict_fn(data, model):
    return model.predict_proba(data.to_numpy(dtype=np.float64))[:, 1]


def output_fn(prediction, accept):
    return "\\n".join(repr(float(p)) for p in prediction) + "\\n", "text/csv"
"""
#: The same with a Pipeline: the CSV read with the Pipeline's column names.
AWS_PIPELINE_SCRIPT = AWS_SCRIPT.replace(
    "pd.read_csv(io.StringIO(input_data), header=None)",
    f"pd.read_csv(io.StringIO(input_data), header=None, names={NUMBERS + TEXTS!r})",
).replace("model.predict_proba(data.to_numpy(dtype=np.float64))", "model.predict_proba(data)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s wrk runs, fewer 1,000-row requests (default 8 s)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the report shows medians over rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-mms", action="store_true", help="measure ours only")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    args.duration = 3.0 if args.quick else 8.0
    args.requests_1k = 10 if args.quick else 20
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def _frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    frame = pd.DataFrame(rng.normal(size=(rows, len(NUMBERS))) * np.geomspace(0.1, 100, len(NUMBERS)), columns=NUMBERS)
    frame["color"] = rng.choice(["red", "green", "blue", "teal"], size=rows)
    frame["size"] = rng.choice(["S", "M", "L"], size=rows)
    return frame


def _label(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    z = frame[NUMBERS].to_numpy() / np.geomspace(0.1, 100, len(NUMBERS))
    score = np.sin(z[:, 0]) * 2 + z[:, 1] * z[:, 2] + (frame["color"] == "red") - (frame["size"] == "L")
    return (score + rng.normal(scale=0.5, size=len(frame)) > 0).astype(int)


def _payload(directory: Path, name: str, frame: pd.DataFrame) -> Payload:
    body = frame.to_csv(header=False, index=False, float_format="%.6g").rstrip("\n").encode()
    path = directory / f"{name}.csv"
    path.write_bytes(body)
    return Payload(rows=len(frame), path=path, body=body)


def build(tmp: Path) -> dict:
    """The two models, their files and roots, and the payloads (1 and 1,000 rows) each takes."""
    rng = np.random.default_rng(SEED)
    train = _frame(rng, 20_000)
    labels = _label(train, rng)
    params = {"n_estimators": 100, "num_leaves": 31, "verbose": -1, "random_state": 1}
    classifier = lgb.LGBMClassifier(**params).fit(train[NUMBERS].to_numpy(), labels)
    columns = ColumnTransformer(
        [("numbers", SimpleImputer(), NUMBERS), ("text", OneHotEncoder(handle_unknown="ignore"), TEXTS)]
    )
    pipeline = Pipeline([("prep", columns), ("model", lgb.LGBMClassifier(**params))]).fit(train, labels)
    payload_dir = tmp / "payloads"
    payload_dir.mkdir(parents=True)
    test = _frame(rng, 1_000)
    payloads = {
        "numbers": {
            1: _payload(payload_dir, "numbers_1", test[NUMBERS][:1]),
            1_000: _payload(payload_dir, "numbers_1k", test[NUMBERS]),
        },
        "pipeline": {
            1: _payload(payload_dir, "pipeline_1", test[:1]),
            1_000: _payload(payload_dir, "pipeline_1k", test),
        },
    }
    sent = pd.read_csv(payloads["pipeline"][1_000].path, header=None, names=NUMBERS + TEXTS)  # the values as sent
    expected = {
        "numbers": classifier.predict_proba(sent[NUMBERS].to_numpy())[:, 1],
        "pipeline": pipeline.predict_proba(sent)[:, 1],
    }
    return {"classifier": classifier, "pipeline": pipeline, "payloads": payloads, "expected": expected}


def model_root(tmp: Path, name: str, files: dict[str, object]) -> Path:
    root = tmp / "roots" / name
    (root / "model").mkdir(parents=True)
    for file_name, content in files.items():
        target = root / "model" / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content)
        elif isinstance(content, lgb.Booster):
            content.save_model(str(target))
        else:
            joblib.dump(content, target)
    return root


#: name -> (model key, files of its model directory (name -> object, text or Booster), MMS or ours)
def layouts(built: dict) -> dict[str, tuple[str, dict[str, object], bool]]:
    return {
        "ours (model.joblib)": ("numbers", {"model.joblib": built["classifier"]}, False),
        "ours (same trees as model.txt)": ("numbers", {"model.txt": built["classifier"].booster_}, False),
        "MMS + toolkit (joblib.load, predict_proba)": (
            "numbers", {"model.joblib": built["classifier"], "code/inference.py": AWS_SCRIPT}, True,
        ),
        "ours (Pipeline model.joblib)": ("pipeline", {"model.joblib": built["pipeline"]}, False),
        "MMS + toolkit (Pipeline: joblib.load, predict_proba)": (
            "pipeline", {"model.joblib": built["pipeline"], "code/inference.py": AWS_PIPELINE_SCRIPT}, True,
        ),
    }  # fmt: skip


def start_all(args: argparse.Namespace, tmp: Path, built: dict) -> dict[str, tuple[Server, str]]:
    started: dict[str, tuple[Server, str]] = {}
    bin_dir = None if args.skip_mms else user_code.ensure_mms()
    for name, (key, files, mms) in layouts(built).items():
        if mms and bin_dir is None:
            continue
        root = model_root(tmp, name.split()[0] + str(len(started)), files)
        if mms:
            assert bin_dir is not None
            server = user_code.start_mms(bin_dir, root, tmp / f"mms-{len(started)}", args.workers)
            server.name = name
        else:
            server = servers.start_ours(servers.DEFAULT_SERVE, root, tmp, args.workers, 300, {}, name=name)
        log(f"{name} ready in {server.ready_seconds:.1f} s")
        started[name] = (server, key)
    return started


def measure_rounds(args: argparse.Namespace, started: dict, scripts: dict[str, Path], payloads: dict) -> dict:
    samples: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in started}
    names = list(started)
    for round_index in range(args.repeat):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            server, key = started[name]
            c1 = measure.run_wrk(
                server.invocations_url, scripts[key], connections=1, threads=1, duration_s=args.duration
            )
            c8 = measure.run_wrk(
                server.invocations_url, scripts[key], connections=8, threads=2, duration_s=args.duration
            )
            rows_1k = measure.median_latency_s(server.invocations_url, payloads[key][1_000], args.requests_1k)
            figures = {"p50_c1_ms": c1.p50_ms, "rps_c8": c8.requests_per_second, "rows_1k_ms": rows_1k * 1e3}
            log(f"round {round_index + 1}: {name}: " + ", ".join(f"{k} {v:,.3f}" for k, v in figures.items()))
            for metric, value in figures.items():
                samples[name][metric].append(value)
    return {name: {k: statistics.median(v) for k, v in metrics.items()} for name, metrics in samples.items()}


def render(medians: dict, errors: dict, args: argparse.Namespace, in_process: dict[str, float]) -> str:
    lines = [
        "# Pickled models: ours against the same trees as text, and against MMS + toolkit with joblib.load",
        "",
        f"- machine: {report.machine_summary()}",
        f"- method: {args.repeat} round(s), medians; wrk {args.duration:g} s per run; {args.requests_1k} × 1,000 rows per "
        f"round; {args.workers} workers each",
        "",
        "| server | 1 row p50, 1 conn (ms) | 1 row req/s, 8 conn | 1,000 rows (ms) | PSS, whole server (MB) "
        "| max abs diff vs predict_proba |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, figures in medians.items():
        lines.append(
            f"| {name} | {figures['p50_c1_ms']:.3f} | {figures['rps_c8']:,.0f} | {figures['rows_1k_ms']:.2f} "
            f"| {figures['pss_mb']:.0f} | {errors[name]:.1e} |"
        )
    joblib_ours, text_ours = medians["ours (model.joblib)"], medians["ours (same trees as model.txt)"]
    lines += [
        "",
        f"joblib against text (target within 5 %): p50 {joblib_ours['p50_c1_ms'] / text_ours['p50_c1_ms']:.2f}×, "
        f"req/s {joblib_ours['rps_c8'] / text_ours['rps_c8']:.2f}×, 1,000 rows {joblib_ours['rows_1k_ms'] / text_ours['rows_1k_ms']:.2f}×; "
        f"in process, the single-row answer path: {in_process['joblib']:.1f} µs against {in_process['text']:.1f} µs "
        f"({in_process['joblib'] / in_process['text']:.2f}×).",
    ]
    for ours, theirs, target in (
        ("ours (model.joblib)", "MMS + toolkit (joblib.load, predict_proba)", 3),
        ("ours (Pipeline model.joblib)", "MMS + toolkit (Pipeline: joblib.load, predict_proba)", 2),
    ):
        if theirs in medians:
            a, b = medians[ours], medians[theirs]
            lines.append(
                f"{ours} against {theirs}: req/s {a['rps_c8'] / b['rps_c8']:.2f}× (target ≥ {target}×), "
                f"p50 {a['p50_c1_ms'] / b['p50_c1_ms']:.2f}×, 1,000 rows {a['rows_1k_ms'] / b['rows_1k_ms']:.2f}×."
            )
    return "\n".join(lines) + "\n"


def in_process_us(tmp: Path, built: dict) -> dict[str, float]:
    """The built-in answer path (decode, validate, predict with LightGBM, encode) for one CSV row,
    in this process, for the estimator as serve loads it from its joblib file (the text derived
    before the workers start) and from the same trees saved as text: best of 5 × 2,000 calls, in µs.
    wrk's p50 on this machine moves by ~0.1 ms between server starts (which core each process
    lands on); this shows what the code itself costs for each."""
    text_model_dir = model_root(tmp / "in-process", "text", {"model.txt": built["classifier"].booster_}) / "model"
    joblib_model_dir = model_root(tmp / "in-process", "joblib", {"model.joblib": built["classifier"]}) / "model"
    derived = derive(joblib_model_dir / "model.joblib", tmp / "in-process" / "derived")
    handler = LightGBMHandler(BuiltinOptions(predict_threads=1, max_values=10**7, derived=derived))
    request = InferenceRequest(built["payloads"]["numbers"][1].body, "text/csv", None)
    models = {"text": handler.load(text_model_dir), "joblib": handler.load(joblib_model_dir)}
    if handler.transform(models["text"], request).body != handler.transform(models["joblib"], request).body:
        raise measure.BenchmarkError("in-process answers differ between the joblib file and the text")
    best = {
        name: min(timeit.repeat(partial(handler.transform, model, request), number=2_000, repeat=5)) / 2_000 * 1e6
        for name, model in models.items()
    }
    log(f"in process: joblib {best['joblib']:.1f} us, text {best['text']:.1f} us per single-row answer")
    return best


def measured_report(args: argparse.Namespace, tmp: Path) -> str:
    """Everything this benchmark measures, in ``tmp``, as its report."""
    built = build(tmp)
    payloads = built["payloads"]
    scripts = {key: measure.write_wrk_script(payloads[key][1], tmp, name=f"{key}.lua") for key in payloads}
    started = start_all(args, tmp, built)
    errors = {
        name: measure.prediction_error(server.invocations_url, payloads[key][1_000], built["expected"][key])
        for name, (server, key) in started.items()
    }
    if max(errors.values()) > 1e-9:
        raise measure.BenchmarkError(f"answers differ from predict_proba: {errors}")
    for server, key in started.values():  # warm every worker
        measure.run_wrk(server.invocations_url, scripts[key], connections=8, threads=2, duration_s=1)
    medians = measure_rounds(args, started, scripts, payloads)
    for name, (server, _) in started.items():  # warm, after every round: what each holds while serving
        medians[name]["pss_mb"] = startup.pss_mb(server.processes[0].popen.pid)
    return render(medians, errors, args, in_process_us(tmp, built))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return harness.run("lgbm-bench-pickles-", args.output, lambda tmp: measured_report(args, tmp))


if __name__ == "__main__":
    sys.exit(main())
