"""Differential check: the same user scripts on Multi Model Server + the SageMaker Inference Toolkit
and on our serve, the same requests, the answers compared byte for byte.

    .venv/bin/python bench/toolkit_differential.py

Not a test tier and not a benchmark: a check that needs MMS and a Java runtime (installed into
build/bench-mms on first use, as bench/user_code.py does), so it is run by hand, like the
benchmarks, when user-code behaviour changes. It exits 1 when any answer the toolkit gives
successfully differs from ours (status, Content-Type or body), or when the toolkit fails a
request (the script raised: 500; a type its decoder or encoder does not know) and ours answers
it with a 200. Failures are listed with both statuses: ours may be a 4xx where the toolkit's is
a 500, by design (a type we do not know is the client's mistake).

The scripts are the mixes real public scripts use: a whole inference.py (examples/), model_fn
with predict_fn and no input_fn / output_fn (one of AWS's own local-mode samples), a predict_fn
returning an array with no output_fn, a transform_fn, and a script that joblib.loads a
scikit-learn LightGBM estimator. Requests: CSV, JSON and NPY bodies; Accept JSON, CSV, NPY,
``*/*`` and none.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "container" / "program"))
from lightgbm_container.packages import use_pickle_packages

use_pickle_packages()  # scikit-learn before LightGBM (lightgbm_container/packages.py)

import joblib  # noqa: E402
import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import requests  # noqa: E402

import processes  # noqa: E402
import servers  # noqa: E402
import user_code  # noqa: E402

EXAMPLES = servers.REPO_DIR / "examples" / "toolkit"
MODEL_AND_PREDICT = """
import os

import lightgbm as lgb


def model_fn(model_dir):
    return lgb.Booster(model_file=os.path.join(model_dir, "model.txt"))


def predict_fn(data, model):
    return model.predict(data)
"""
PREDICT_AND_INPUT = (
    MODEL_AND_PREDICT
    + """

import io

import numpy as np


def input_fn(input_data, content_type):
    if isinstance(input_data, bytes):
        input_data = input_data.decode()
    return np.loadtxt(io.StringIO(input_data), delimiter=",", ndmin=2)
"""
)
JOBLIB_ESTIMATOR = """
import os

import joblib
import numpy as np
import sklearn  # the JumpStart inference script imports scikit-learn too


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def predict_fn(data, model):
    return model.predict_proba(np.asarray(data, dtype=np.float64))
"""
#: name -> (inference.py source, files beside it in the model directory: "model.txt" or "model.joblib")
SCRIPTS: dict[str, tuple[str, str]] = {
    "pandas_inference.py (examples/)": ((EXAMPLES / "pandas_inference.py").read_text(), "model.txt"),
    "transform_fn (examples/)": ((EXAMPLES / "transform_only.py").read_text(), "model.txt"),
    "model_fn + predict_fn": (MODEL_AND_PREDICT, "model.txt"),
    "model_fn + input_fn + predict_fn": (PREDICT_AND_INPUT, "model.txt"),
    "joblib.load an LGBMClassifier": (JOBLIB_ESTIMATOR, "model.joblib"),
}
ACCEPTS = ("application/json", "text/csv", "application/x-npy", "*/*", None)


def log(message: str) -> None:
    print(f"[differential] {message}", flush=True)


def bodies(rows: np.ndarray) -> dict[str, bytes]:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    csv = "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()
    return {"text/csv": csv, "application/json": str(rows.tolist()).encode(), "application/x-npy": buffer.getvalue()}


def layout(tmp: Path, name: str, source: str, model_name: str, booster: lgb.Booster, classifier: object) -> Path:
    root = tmp / "roots" / name.replace(" ", "_").replace("/", "_")
    (root / "model" / "code").mkdir(parents=True)
    (root / "model" / "code" / "inference.py").write_text(source)
    if model_name == "model.txt":
        booster.save_model(str(root / "model" / "model.txt"))
    else:
        joblib.dump(classifier, root / "model" / "model.joblib")
    return root


def answer(url: str, body: bytes, content_type: str, accept: str | None) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    response = requests.post(url, data=body, headers=headers, timeout=60)
    return response.status_code, response.headers.get("Content-Type", "").split(";")[0], response.content


def main(argv: Sequence[str] | None = None) -> int:
    processes.install_cleanup()
    servers.ensure_tools()
    bin_dir = user_code.ensure_mms()
    tmp = Path(tempfile.mkdtemp(prefix="lgbm-differential-"))
    rng = np.random.default_rng(7)
    features = rng.normal(size=(2000, 6))
    labels = (features[:, 0] + features[:, 1] ** 2 > 1).astype(int)
    booster = lgb.train({"objective": "regression", "verbosity": -1}, lgb.Dataset(features, labels.astype(float)), 30)
    classifier = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(features, labels)
    requests_bodies = bodies(features[:4])
    compared = differing = 0
    failed: list[str] = []
    try:
        for index, (name, (source, model_name)) in enumerate(SCRIPTS.items()):
            root = layout(tmp, name, source, model_name, booster, classifier)
            mms = user_code.start_mms(bin_dir, root, tmp / f"mms-{index}", 1)
            ours_env = {"LIGHTGBM_PREDICTOR": "lightgbm"}
            (tmp / f"ours-{index}").mkdir()
            ours = servers.start_ours(servers.DEFAULT_SERVE, root, tmp / f"ours-{index}", 1, 120, ours_env, name="ours")
            try:
                for content_type, body in requests_bodies.items():
                    for accept in ACCEPTS:
                        theirs = answer(mms.invocations_url, body, content_type, accept)
                        mine = answer(ours.invocations_url, body, content_type, accept)
                        case = f"{name}: {content_type} -> Accept {accept}"
                        if theirs[0] != 200:
                            failed.append(f"{case}: toolkit {theirs[0]}, ours {mine[0]}")
                            differing += mine[0] == 200
                            continue
                        compared += 1
                        if theirs != mine:
                            differing += 1
                            log(
                                f"DIFFERENT {case}:\n  toolkit {theirs[0]} {theirs[1]} {theirs[2][:200]!r}\n  ours    {mine[0]} {mine[1]} {mine[2][:200]!r}"
                            )
            finally:
                for process in reversed(mms.processes + ours.processes):
                    process.stop()
        log(f"{compared} answers the toolkit gave compared, {differing} different")
        log(f"{len(failed)} requests the toolkit failed (ours must fail them too):")
        for line in failed:
            log(f"  {line}")
        return 1 if differing else 0
    finally:
        processes.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
