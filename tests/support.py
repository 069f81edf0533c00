"""Test helpers shared by the tiers: paths, free ports, and the real `train` / `serve` as processes.

(Not named conftest: tests/container has its own conftest module.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from requests.structures import CaseInsensitiveDict

REPO = Path(__file__).resolve().parent.parent
PROGRAM = REPO / "container" / "program"
TEST_DIR = REPO / "local_test" / "test_dir"
DATA = REPO / "data"
PAYLOAD_ROWS = (
    (REPO / "local_test" / "payload.csv").read_text().splitlines()
)  # rows of the trained diabetes model's features
VENV_BIN = Path(sys.executable).parent
EXAMPLES = REPO / "examples"
#: Two records of the trained diabetes model's ten features (``expected_rows`` in conftest: its answers).
ROWS = [[59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.8598, 87], [48, 1, 21.6, 87, 183, 103.2, 70, 3, 3.8918, 69]]

sys.path.insert(0, str(PROGRAM))  # unit tests import the package exactly as the image does

from lightgbm_container.packages import use_pickle_packages  # noqa: E402

#: The in-process tiers serve pickles, so scikit-learn goes on the path before anything imports
#: LightGBM, as serve arranges for its workers (lightgbm_container/packages.py).
use_pickle_packages_first = use_pickle_packages()

#: The AWS CLI and moto (an AWS API emulator), in their own venv: botocore pins clash with .venv's.
AWS_TOOLS_REQUIREMENTS = REPO / "tests" / "push" / "requirements.txt"
AWS_TOOLS_VENV = REPO / "build" / "push-tools"

#: name -> seconds, printed at the end of the run (tools installed on first use, pushes...).
TIMINGS: dict[str, float] = {}


def tool_venv(venv: Path, requirements: Path, what: str, executables: tuple[str, ...] = ("python",)) -> Path:
    """bin/ of ``venv`` with ``requirements`` installed (tools whose pins clash with .venv's);
    installed on first use and again when the requirements change."""
    wanted = requirements.read_text()
    stamp = venv / "requirements.txt"
    bin_dir = venv / "bin"
    if stamp.is_file() and stamp.read_text() == wanted and all((bin_dir / name).exists() for name in executables):
        return bin_dir
    started = time.monotonic()
    shutil.rmtree(venv, ignore_errors=True)
    for step in (
        [sys.executable, "-m", "venv", str(venv)],
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
    ):
        result = subprocess.run(step, capture_output=True, text=True, timeout=1800, check=False)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            unavailable(f"cannot install {what}: {tail(result.stdout + result.stderr, 15)}")
    stamp.write_text(wanted)
    TIMINGS[f"{what} install into {venv.relative_to(REPO)} (first run only)"] = time.monotonic() - started
    return bin_dir


def unavailable(reason: str) -> None:
    """A tool a test needs cannot be had: skip, except in CI (env CI set), where that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# Loopback servers must never be reached through a proxy (neither by urllib here, nor by
# the AWS CLI or the engine in the script).
_NO_PROXY = "127.0.0.1,localhost"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def base_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any AWS settings, loopback never proxied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "ECR_REGISTRY_OVERRIDE"}
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{_NO_PROXY}" if env.get(key) else _NO_PROXY
    env.update(extra)
    return env


def http_get(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) of a loopback URL, without proxies."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _LOCAL.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


class Background:
    """A server started by a fixture (a registry, an AWS API emulator), its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_http(self, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if http_get(url)[0] < 500:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{self.proc.args[0]} did not answer {url}; log:\n{tail(self.log.read_text(errors='replace'))}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RawResponse:
    """What :func:`raw_http` got back, with the attribute names of a requests response."""

    status_code: int
    headers: CaseInsensitiveDict
    content: bytes


def raw_http(port: int, request: bytes, timeout: float = 10) -> RawResponse:
    """Send bytes as they are (no client library tidies them up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    while answer.startswith(b"HTTP/1.1 100 "):  # Expect: 100-continue
        answer = answer.split(b"\r\n\r\n", 1)[1]
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = CaseInsensitiveDict(
        {name.strip(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    )
    return RawResponse(int(lines[0].split()[1]), headers, body)


def json_error(response, status: int | None = None, code: str | None = None, *fragments: str) -> dict:
    """The body of a refusal in the one JSON shape every error has (``error`` and ``message``).

    ``response``: from requests, Flask's test client or :func:`raw_http`. Checks the status
    (any 4xx/5xx when ``status`` is None), the Content-Type, and ``code`` and message
    ``fragments`` when given."""
    body = response.content if hasattr(response, "content") else response.get_data()
    got = response.status_code
    assert got == status if status is not None else 400 <= got < 600, (got, body[:500])
    assert response.headers["Content-Type"] == "application/json", (got, dict(response.headers), body[:300])
    document = json.loads(body)
    assert isinstance(document.pop("request_id", ""), str), document
    assert (
        isinstance(document.get("error"), str) and isinstance(document.get("message"), str) and document["message"]
    ), document
    if code is not None:
        assert document["error"] == code, document
    for fragment in fragments:
        assert fragment in document["message"], document
    return document


def in_process_app(root: Path, **extra: str):
    """The Flask app ``serve``'s workers run, in this process (Flask's test client drives it).

    Settings come from the same environment variables as for ``serve`` (``extra``), on top of
    a clean environment. What ``serve`` decides before its workers start is decided the same
    way (the user code directory, without installing its requirements); multi-model mode gets
    a private state directory under ``root``.
    """
    from lightgbm_container.serving.app import create_app
    from lightgbm_container.serving.store import create_store
    from lightgbm_container.settings import Runtime, serving_settings
    from lightgbm_container.user_code.setup import resolve_code_dir

    env = {"SAGEMAKER_BASE_DIR": str(root), "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "LIGHTGBM_PREDICTOR": "lightgbm"}
    settings = serving_settings({**env, **extra})
    run_dir = root / ".run"
    run_dir.mkdir(exist_ok=True)
    state_dir = root / ".state" if settings.multi_model else None
    runtime = Runtime(code_dir=resolve_code_dir(settings, run_dir), state_dir=state_dir)
    return create_app(settings, runtime, create_store(settings, runtime))


def example(path: str) -> str:
    """The source of a user file the README shows (examples/)."""
    return (EXAMPLES / path).read_text()


def csv_body(rows) -> str:
    """Rows of numbers as the SDK's CSVSerializer sends them (no header, no trailing newline), exact floats."""
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows)


def npy_body(array) -> bytes:
    """An array as the SDK's NumpySerializer sends it."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def root_with_code(tmp: Path, trained_root: Path, files: dict[str, str], code_dir: str = "code") -> Path:
    """A model directory as the SDK repacks it: the trained model's files plus ``code/``
    (files: name -> source), in a new ML root."""
    root = tmp / "ml"
    shutil.copytree(trained_root / "model", root / "model")
    for name, source in files.items():
        path = root / "model" / code_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def program_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "MODEL_SERVER_", "LIGHTGBM_"))}
    env["PATH"] = f"{VENV_BIN}:/usr/sbin:{env.get('PATH', '')}"
    env["SAGEMAKER_BASE_DIR"] = str(root)
    env.update(extra)
    return env


def pyarrow_module():
    """pyarrow, from the training-only packages (container/requirements-training.txt), to write
    Parquet test data. pandas is imported first, so this process's pandas stays as serving's
    workers have it: without pyarrow."""
    import pandas  # noqa: F401

    from lightgbm_container.packages import use_training_packages

    assert use_training_packages(), "the training-only packages are missing: run scripts/setup_host.sh"
    import pyarrow
    import pyarrow.csv
    import pyarrow.parquet

    return pyarrow


def run_train(root: Path, **extra: str) -> subprocess.CompletedProcess:
    """The real ``train``; compiling ahead is off unless asked for (its own tests, and the
    container tier, run it: elsewhere it would only add seconds per training)."""
    extra.setdefault("LIGHTGBM_COMPILE_AHEAD", "false")
    return subprocess.run(
        [str(PROGRAM / "train")], env=program_env(root, **extra), capture_output=True, text=True, timeout=300
    )


def make_root(tmp: Path, hyperparameters: dict | None = None, source: Path = TEST_DIR) -> Path:
    """A SageMaker-layout ML root: a copy of ``source`` with the given hyperparameters."""
    import json

    root = tmp / "ml"
    shutil.copytree(source, root)
    if hyperparameters is not None:
        (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    return root


class Server:
    """The real `serve` (nginx + gunicorn) on a free loopback port; stopped by whoever started it."""

    def __init__(self, root: Path, log_path: Path, **extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        settings = {
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "SERVE_LISTEN_ADDRESS": "127.0.0.1",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
            "LIGHTGBM_COMPILE_CACHE": str(REPO / "build" / "compile-cache"),
        }
        env = program_env(root, **{**settings, **extra})
        self.workers = int(env["SAGEMAKER_MODEL_SERVER_WORKERS"])
        # Append mode: nginx reopens /dev/stdout with O_APPEND; writers without it would overwrite its lines.
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([str(PROGRAM / "serve")], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 120, every_worker: bool = True) -> None:
        """Until ``/ping`` answers 200 and, with ``every_worker``, every worker has started:
        ``/ping`` answers as soon as one worker is up, and gunicorn starts the next one up to
        0.1 s later, so a test that counts workers or their boots needs them all."""
        deadline, last = time.monotonic() + timeout, "/ping never answered 200"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.logs()[-20000:]}")
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    if not every_worker:
                        return
                    stats = requests.get(self.url + "/stats", timeout=5)  # answered by a worker, unlike /ping
                    last = f"/stats answered {stats.status_code}: {stats.text[:500]}"
                    if stats.status_code == 200 and stats.json()["workers"] >= self.workers:
                        return
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or workers still booting
                pass
            time.sleep(0.2)
        raise AssertionError(
            f"serve never became healthy (with {self.workers} workers; {last}):\n{self.logs()[-20000:]}"
        )

    def stats(self) -> dict:
        response = requests.get(self.url + "/stats", timeout=5)
        assert response.status_code == 200, (response.status_code, response.text[:1000])
        return response.json()

    def wait_for_log(self, text: str, timeout: float = 5) -> str:
        """The log once it holds ``text`` (nginx writes its access lines at least every second)."""
        deadline = time.monotonic() + timeout
        while text not in (logs := self.logs()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert text in logs, f"{text!r} never appeared in the log:\n{logs[-3000:]}"
        return logs

    def wait_compiled(self, workers: int = 2, timeout: float = 120) -> dict:
        """Until the background compile is done (fully optimised) and every worker predicts
        with the compiled trees; returns /stats then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats["workers"] >= workers and stats["workers_on_final_compile"] >= workers:
                return stats
            if (stats.get("compile") or {}).get("state") == "failed":
                raise AssertionError(f"the compile failed: {stats}\n{self.logs()[-5000:]}")
            time.sleep(0.1)
        raise AssertionError(f"the workers never switched to the compiled trees: {self.stats()}\n{self.logs()[-5000:]}")

    def logs(self) -> str:
        """Everything serve has logged so far (or in all, once stopped)."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def post(
        self,
        body: bytes | str,
        content_type: str = "text/csv",
        accept: str | None = None,
        path: str = "/invocations",
        **headers: str,
    ):
        headers = {"Content-Type": content_type, **headers}
        if accept is not None:
            headers["Accept"] = accept
        return requests.post(self.url + path, data=body, headers=headers, timeout=60)


# --------------------------------------------------------------------------- categorical data

#: The objectives the output-kind tests cover, with their label column's kind.
OBJECTIVES = ("regression", "binary", "multiclass")


def categorical_frame(rows: int, seed: int, objective: str):
    """A table with two numeric features, two text categorical ones, and a label: numeric for
    regression, text ("no"/"yes", "low"/"mid"/"high") for the classifiers."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.uniform(0, 10, size=rows)
    color = rng.choice(["red", "green", "blue", "dark teal"], size=rows)
    size = rng.choice(["S", "M", "L"], size=rows)
    score = x1 + (color == "red") * 1.5 - (size == "L") + x2 / 10 + rng.normal(scale=0.3, size=rows)
    if objective == "regression":
        label = score
    elif objective == "binary":
        label = np.where(score > 0.6, "yes", "no")
    else:
        label = np.where(score > 1.2, "high", np.where(score > 0.2, "mid", "low"))
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "size": size, "label": label})


def categorical_root(tmp: Path, objective: str, **hyperparameters: str) -> Path:
    """An ML root whose train and validation channels are CSV with a header and text categories."""
    root = tmp / f"ml-{objective}"
    frame = categorical_frame(700, 7, objective)
    for channel, part in (("train", frame[:600]), ("validation", frame[600:])):
        (root / "input" / "data" / channel).mkdir(parents=True)
        part.to_csv(root / "input" / "data" / channel / f"{channel}.csv", index=False)
    (root / "input" / "config").mkdir(parents=True)
    params = {
        "objective": objective,
        "num_boost_round": "30",
        "min_data_per_group": "5",
        "cat_smooth": "1",
        **hyperparameters,
    }
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(params))
    return root


def lightgbm_frame(booster, rows: list[dict]):
    """Request rows as LightGBM's own pandas path sees them: the training categories applied."""
    import pandas as pd

    names = booster.feature_name()
    frame = pd.DataFrame(rows, columns=names)
    categorical = [names[int(i)] for i in booster.params["categorical_feature"]]
    for name in names:
        if name not in categorical:
            frame[name] = frame[name].astype(float)
    for name, categories in zip(categorical, booster.pandas_categorical):
        frame[name] = frame[name].astype("category").cat.set_categories(categories)  # as LightGBM's pandas path does
    return frame


def _flat_json(kind: str, value, features: list[str]) -> list:
    if kind == "contributions":
        per_class = value if isinstance(value, list) else [value]
        return [v for one in per_class for v in [one["features"][name] for name in features] + [one["bias"]]]
    if kind == "top_k":
        return [v for pair in value for v in (pair["label"], pair["probability"])]
    return value if isinstance(value, list) else [value]


def _csv_cell(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def read_outputs(
    content_type: str, body: bytes, kinds: list[str], widths: dict[str, int], features: list[str]
) -> dict[str, list[list]]:
    """A response with chosen output kinds, in any content type, as kind -> one flat list per record
    (contributions: each class's features in model order, then its bias; top_k: label, probability, ...).
    ``widths``: each kind's number of CSV columns (the README's documented order)."""
    import csv
    import io

    import numpy as np

    media_type = content_type.split(";", maxsplit=1)[0]
    out: dict[str, list[list]] = {kind: [] for kind in kinds}
    if media_type in ("application/json", "application/jsonlines"):
        records = (
            json.loads(body)["predictions"]
            if media_type == "application/json"
            else [json.loads(line) for line in body.splitlines()]
        )
        for record in records:
            assert list(record) == kinds, record.keys()
            for kind in kinds:
                out[kind].append(_flat_json(kind, record[kind], features))
    elif media_type == "text/csv":
        for row in csv.reader(io.StringIO(body.decode())):
            assert len(row) == sum(widths[kind] for kind in kinds), row
            start = 0
            for kind in kinds:
                out[kind].append([_csv_cell(cell) for cell in row[start : start + widths[kind]]])
                start += widths[kind]
    else:
        array = np.load(io.BytesIO(body), allow_pickle=False)
        for kind in kinds:
            if kind == "top_k":
                labels, probabilities = array["top_k_labels"].tolist(), array["top_k_probabilities"].tolist()
                out[kind] = [[v for pair in zip(l, p) for v in pair] for l, p in zip(labels, probabilities)]
            else:
                out[kind] = [np.atleast_1d(value).tolist() for value in array[kind]]
    return out


def output_widths(booster, metadata: dict, features: list[str]) -> dict[str, int]:
    """Each kind's number of CSV columns for this model (the README's documented order)."""
    classes = len(metadata["classes"] or [1])
    per_class = classes if classes > 2 else 1
    return {
        "predicted_score": per_class,
        "raw_score": per_class,
        "probability": 1,
        "probabilities": classes,
        "predicted_label": 1,
        "labels": classes,
        "contributions": (len(features) + 1) * per_class,
        "leaf": booster.num_trees(),
        "top_k": 2 * min(3, classes),
    }


def assert_outputs_equal(got: dict[str, list[list]], expected: dict[str, list[list]], tolerance: float = 1e-9) -> None:
    for kind, rows in expected.items():
        assert len(got[kind]) == len(rows), kind
        for got_row, expected_row in zip(got[kind], rows):
            assert len(got_row) == len(expected_row), (kind, got_row, expected_row)
            for g, e in zip(got_row, expected_row):
                if isinstance(e, str):
                    assert g == e, (kind, got_row, expected_row)
                else:
                    assert abs(float(g) - float(e)) <= tolerance, (kind, got_row, expected_row)


def expected_outputs(booster, frame, kinds: list[str], classes: list | None, top_k: int = 3) -> dict[str, list[list]]:
    """Every output kind as LightGBM itself computes it for ``frame`` (see :func:`lightgbm_frame`)."""
    import numpy as np

    score = np.asarray(booster.predict(frame))
    multiclass = score.ndim == 2
    probabilities = score if multiclass else np.column_stack((1 - score, score))
    classes = np.array(classes if classes is not None else range(probabilities.shape[1]), dtype=object)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    every = {
        "predicted_score": score.reshape(len(score), -1),
        "raw_score": np.asarray(booster.predict(frame, raw_score=True)).reshape(len(score), -1),
        "probability": (probabilities.max(axis=1) if multiclass else score).reshape(-1, 1),
        "probabilities": probabilities,
        "predicted_label": classes[np.argmax(probabilities, axis=1)].reshape(-1, 1),
        "labels": np.tile(classes, (len(score), 1)),
        "contributions": np.asarray(booster.predict(frame, pred_contrib=True)),
        "leaf": np.asarray(booster.predict(frame, pred_leaf=True)),
        "top_k": np.array(
            [[v for pair in zip(classes[o], p[o]) for v in pair] for o, p in zip(order, probabilities)], dtype=object
        ),
    }
    return {kind: [list(row) for row in every[kind].tolist()] for kind in kinds}


# --------------------------------------------------------------------------- multi-model layouts


def model_layout(root: Path, name: str, model_file: Path) -> Path:
    """SageMaker's multi-model layout: ``models/<name>/model/<file>``; returns the model directory."""
    target = root / "models" / name / "model"
    target.mkdir(parents=True)
    shutil.copy(model_file, target / "model.txt")
    return target


def tar_archive(root: Path, name: str, members: list[tuple[str, object, str]]) -> Path:
    """``models/<name>``, a .tar.gz of (member name, bytes or link target, "file" or "link")."""
    import io
    import tarfile

    path = root / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for member_name, data, kind in members:
            info = tarfile.TarInfo(member_name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = str(data)
                tar.addfile(info)
    return path


# --------------------------------------------------------------------------- pickled models


def pickled_models(directory: Path) -> dict:
    """Every kind of pickle the container serves, fitted here with the pinned libraries and saved
    with joblib: name -> (file, the unpickled object's twin in memory, a frame of its input rows).

    - ``booster``: a ``lightgbm.Booster`` (regression), pickled with ``pickle`` itself;
    - ``regressor``, ``binary`` (text labels), ``multiclass``, ``ranker``: LightGBM's scikit-learn
      estimators (the binary one with early stopping, so its best iteration counts);
    - ``pipeline``: a ``ColumnTransformer`` (imputer over numbers, one-hot over text) then an
      ``LGBMClassifier``; ``scaled``: a ``StandardScaler`` then an ``LGBMRegressor`` (features kept).
    """
    import pickle
    import warnings

    import joblib
    import lightgbm as lgb
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = categorical_frame(600, 11, "regression")
    numbers = frame[["x1", "x2"]].assign(x3=frame["x1"] * frame["x2"]).to_numpy()
    score = frame["label"].to_numpy()
    quiet = {"n_estimators": 40, "num_leaves": 15, "verbose": -1, "min_child_samples": 5}
    binary_labels = np.where(score > score.mean(), "yes", "no")
    three = np.digitize(score, np.quantile(score, [0.33, 0.66]))
    models: dict = {}
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_leaves": 15}, lgb.Dataset(numbers, score), 40)
    path = directory / "booster.pkl"
    path.write_bytes(pickle.dumps(booster))
    models["booster"] = (path, booster, numbers)
    binary = lgb.LGBMClassifier(n_estimators=200, num_leaves=15, verbose=-1, min_child_samples=5)
    with warnings.catch_warnings():  # eval_set is deprecated in LightGBM 4.7; eval_X/eval_y do not encode text labels
        warnings.simplefilter("ignore")
        stop = [lgb.early_stopping(5, verbose=False)]
        binary.fit(numbers[:500], binary_labels[:500], eval_set=[(numbers[500:], binary_labels[500:])], callbacks=stop)
    fitted = {
        "regressor": lgb.LGBMRegressor(**quiet).fit(numbers, score),
        "binary": binary,
        "multiclass": lgb.LGBMClassifier(**quiet).fit(numbers, three),
        "ranker": lgb.LGBMRanker(**quiet).fit(numbers, three, group=[100] * 6),
        "scaled": Pipeline([("scale", StandardScaler()), ("model", lgb.LGBMRegressor(**quiet))]).fit(
            frame[["x1", "x2"]], score
        ),
    }
    columns = ColumnTransformer(
        [
            ("numbers", SimpleImputer(), ["x1", "x2"]),
            ("text", OneHotEncoder(handle_unknown="ignore"), ["color", "size"]),
        ]
    )
    fitted["pipeline"] = Pipeline([("prep", columns), ("model", lgb.LGBMClassifier(**quiet))]).fit(
        frame[["x1", "x2", "color", "size"]], binary_labels
    )
    inputs = {"scaled": frame[["x1", "x2"]], "pipeline": frame[["x1", "x2", "color", "size"]]}
    for name, model in fitted.items():
        path = directory / f"{name}.joblib"
        joblib.dump(model, path)
        models[name] = (path, model, inputs.get(name, numbers))
    return models


def pickled_root(tmp: Path, model_file: Path, name: str | None = None) -> Path:
    """An ML root whose model directory holds ``model_file`` alone (under ``name``)."""
    root = tmp / "ml"
    (root / "model").mkdir(parents=True)
    shutil.copy(model_file, root / "model" / (name or model_file.name))
    return root


#: What the SageMaker SDK's ``retrieve_default`` sends for the built-in LightGBM classification
#: model (every value a string), with fewer rounds for test speed. The regression model's has
#: ``tweedie_variance_power`` instead of ``scale_pos_weight``.
BUILTIN_HYPERPARAMETERS = {
    "num_boost_round": "40",
    "early_stopping_rounds": "30",
    "metric": "auto",
    "learning_rate": "0.009",
    "num_leaves": "67",
    "feature_fraction": "0.74",
    "bagging_fraction": "0.53",
    "bagging_freq": "5",
    "max_depth": "11",
    "min_data_in_leaf": "26",
    "max_delta_step": "0.0",
    "lambda_l1": "0.0",
    "lambda_l2": "0.0",
    "boosting": "gbdt",
    "min_gain_to_split": "0.0",
    "scale_pos_weight": "1.0",
    "tree_learner": "serial",
    "feature_fraction_bynode": "1.0",
    "is_unbalance": "False",
    "max_bin": "255",
    "num_threads": "0",
    "verbosity": "1",
    "use_dask": "False",
}
#: The built-in algorithm's layouts: where train and validation data go in the ML root.
BUILTIN_LAYOUTS = {
    "subfolders": ("training/train", "training/validation"),  # one `training` channel holding both
    "subfolders, no validation": ("training/train", None),  # the built-in then holds out 20 %
    "channels": ("train", "validation"),  # a train and a validation channel
    "train alone": ("train", None),
}


def builtin_rows(objective: str, rows: int, seed: int = 3):
    """The built-in algorithm's data: the target in the first column, then 5 numeric features
    of which column 4 is an integer category (0-3). Binary labels 0/1, multiclass 0/1/2."""
    import numpy as np

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 5))
    features[:, 3] = rng.integers(0, 4, rows)
    score = features[:, 0] + features[:, 1] * features[:, 2] + (features[:, 3] == 2) + rng.normal(0, 0.3, rows)
    if objective == "regression":
        target = score * 10 + 3
    elif objective == "binary":
        target = (score > 0.4).astype(int)
    else:
        target = np.digitize(score, [0.0, 1.0])
    return np.column_stack([target, features])


def builtin_job_root(
    tmp: Path, objective: str, layout: str, hyperparameters: dict | None = None, index: bool = True, rows: int = 900
) -> Path:
    """An ML root of a built-in algorithm job: CSV without a header in ``layout``
    (:data:`BUILTIN_LAYOUTS`), ``categorical_index.json`` naming column 4 when ``index``, the
    SDK's default hyperparameters (``hyperparameters`` replace them when given)."""
    import numpy as np

    root = tmp / f"ml-{objective}-{layout.replace(' ', '-').replace(',', '')}"
    data = builtin_rows(objective, rows)
    train_dir, validation_dir = BUILTIN_LAYOUTS[layout]
    parts = [(train_dir, data[: rows * 4 // 5])] + ([(validation_dir, data[rows * 4 // 5 :])] if validation_dir else [])
    for directory, part in parts:
        (root / "input" / "data" / directory).mkdir(parents=True)
        np.savetxt(root / "input" / "data" / directory / "data.csv", part, delimiter=",", fmt="%.10g")
    channel = train_dir.split("/")[0]
    if index:
        (root / "input" / "data" / channel / "categorical_index.json").write_text(json.dumps({"cat_index_list": [4]}))
    (root / "input" / "config").mkdir(parents=True)
    if hyperparameters is None:
        hyperparameters = dict(BUILTIN_HYPERPARAMETERS)
        if objective == "regression":
            hyperparameters.pop("scale_pos_weight")
            hyperparameters["tweedie_variance_power"] = "1.5"
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    channels = {name.split("/")[0] for name in (train_dir, validation_dir) if name}
    (root / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({name: {"ContentType": "text/csv"} for name in channels})
    )
    return root


#: The metric regexes of the built-in's "Tune a LightGBM model" page (HyperparameterTuner metric_definitions).
BUILTIN_METRIC_REGEXES = {
    name: f"{name}: ([0-9\\.]+)"
    for name in ("rmse", "l1", "l2", "huber", "fair", "binary_logloss", "binary_error", "auc", "multi_logloss")
}


#: What a user's inference.py that needs lgbmc-probe (:func:`write_probe_wheel`) adds to
#: examples/toolkit/model_fn_only.py: its predictions times the package's SCALE (3).
PROBE_PREDICT_FN = (
    "\n\nimport lgbmc_probe\n\n\ndef predict_fn(data, model):\n    return model.predict(data) * lgbmc_probe.SCALE\n"
)


def write_probe_wheel(directory: Path) -> Path:
    """lgbmc-probe 1.0, a tiny pure-Python wheel (a zip with a fixed layout) that no index has:
    a requirements.txt naming it installs only from the wheel vendored beside it (code/lib)."""
    files = {
        "lgbmc_probe/__init__.py": b"SCALE = 3.0\n",
        "lgbmc_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: lgbmc-probe\nVersion: 1.0\n",
        "lgbmc_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()]
    files["lgbmc_probe-1.0.dist-info/RECORD"] = ("\n".join(record) + "\nlgbmc_probe-1.0.dist-info/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / "lgbmc_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def failed_start(root: Path, tmp_path: Path, **env: str) -> str:
    """``serve`` on ``root`` that must stop at start (exit code not 0): its log, for the reason."""
    server = Server(root, tmp_path / "failed.log", **env)
    try:
        assert server.process.wait(timeout=60) != 0
        return server.logs()
    finally:
        server.stop()
