"""The real image, run as SageMaker runs it: `IMAGE train` and `IMAGE serve` with /opt/ml mounted.

Run: .venv/bin/python -m pytest tests/container -m container
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import free_port

pytestmark = pytest.mark.container

N_ROWS = 300
N_FEATURES = 5
PING_TIMEOUT = 180.0  # the first start may compile the model with lleaves
STOP_GRACE = 30  # SageMaker sends SIGKILL 30 s after SIGTERM


# --------------------------------------------------------------------------- helpers


def make_rows(n: int, seed: int) -> list[list[float]]:
    """Rows of N_FEATURES features followed by a regression label."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = [rng.uniform(-2.0, 2.0) for _ in range(N_FEATURES)]
        y = 3.0 * x[0] - 2.0 * x[1] + x[2] * x[3] + 0.5 * math.sin(x[4]) + rng.gauss(0.0, 0.1)
        rows.append(x + [y])
    return rows


def csv_text(rows: list[list[float]]) -> str:
    return "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows)


def make_ml_root(root: Path, hyperparameters: dict[str, str]) -> Path:
    """A SageMaker /opt/ml layout with one `train` channel of headerless CSV (label last)."""
    config = root / "input" / "config"
    train = root / "input" / "data" / "train"
    for directory in (config, train, root / "model", root / "output"):
        directory.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(
        json.dumps(
            {
                "train": {
                    "TrainingInputMode": "File",
                    "ContentType": "text/csv",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
            }
        )
    )
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"})
    )
    (train / "train.csv").write_text(csv_text(make_rows(N_ROWS, seed=7)) + "\n")
    return root


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    content_type: str | None = None,
    timeout: float = 30.0,
    headers: dict[str, str] | None = None,
) -> Response:
    request = urllib.request.Request(url, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, answer.headers.get("Content-Type", ""), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers.get("Content-Type", ""), error.read())


def run_train(
    engine: str,
    image: str,
    root: Path,
    timeout: float = 600,
    command: tuple[str, ...] = ("train",),
    env: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``IMAGE train`` (or ``command``; ``env``: ``-e`` settings; ``options``: the engine's) with ``root`` as /opt/ml."""
    return subprocess.run(
        [
            engine,
            "run",
            "--rm",
            *options,
            *(f"-e{setting}" for setting in env),
            "-v",
            f"{root}:/opt/ml",
            image,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class TrainingContainer:
    """``IMAGE train`` running in a named container, its output going to ``log``."""

    name: str
    process: subprocess.Popen
    log: Path

    def wait_for_log(self, text: str, what: str, timeout: float = 120) -> None:
        """Until ``text`` is in the log; fails with ``what`` and the log's end if it never comes."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text(errors="replace"):
            assert self.process.poll() is None, (
                f"train ended early ({self.process.returncode}):\n{self.log.read_text()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"{what}:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.2)


@contextlib.contextmanager
def training_container(
    engine: str, image: str, root: Path, log: Path, env: tuple[str, ...] = ()
) -> Iterator[TrainingContainer]:
    """``IMAGE train`` with ``root`` as /opt/ml, in the background; removed (and waited for) at the end."""
    name = f"lgbm-test-{uuid.uuid4().hex[:10]}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                engine,
                "run",
                "--rm",
                "--name",
                name,
                *(f"-e{setting}" for setting in env),
                "-v",
                f"{root}:/opt/ml",
                image,
                "train",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield TrainingContainer(name, process, log)
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True, timeout=120, check=False)
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class Server:
    engine: str
    name: str
    url: str
    process: subprocess.Popen
    log: Path
    started: float = 0.0  # time.monotonic() when the engine was asked to run the container
    startup_seconds: float = 0.0

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def serving(
    engine: str,
    image: str,
    root: Path,
    log_dir: Path,
    container_port: int = 8080,
    env: dict[str, str] | None = None,
    options: tuple[str, ...] = (),
    mount: str = "",
) -> Iterator[Server]:
    """`IMAGE serve` in the foreground (so its exit code is seen), removed afterwards; ``options``:
    the engine's (``--user``, ``--read-only``, ...); ``mount``: the /opt/ml volume's (``:ro``)."""
    port = free_port()
    name = f"lgbm-test-{uuid.uuid4().hex[:10]}"
    log = log_dir / f"{name}.log"
    command = [
        engine,
        "run",
        "--rm",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:{container_port}",
        *options,
        "-v",
        f"{root}:/opt/ml{mount}",
    ]
    for key, value in (env or {}).items():
        command += ["-e", f"{key}={value}"]
    command += [image, "serve"]
    with log.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(engine, name, f"http://127.0.0.1:{port}", process, log, started)
    try:
        deadline = started + PING_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"serve exited with {process.returncode} before answering /ping:\n{server.logs()}", pytrace=False
                )
            if time.monotonic() > deadline:
                pytest.fail(f"/ping did not answer 200 within {PING_TIMEOUT:.0f} s:\n{server.logs()}", pytrace=False)
            try:
                if http("GET", server.url + "/ping", timeout=2).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        server.startup_seconds = time.monotonic() - started
        yield server
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True, timeout=120, check=False)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def predict_rows(rows: list[list[float]]) -> bytes:
    # As the SDK's CSVSerializer sends them: features only, rows joined by \n, no trailing newline.
    return csv_text([row[:N_FEATURES] for row in rows]).encode()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trained(
    engine: str, image: str, timings: dict[str, float], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    root = make_ml_root(tmp_path_factory.mktemp("ml"), {"objective": "regression", "num_boost_round": "20"})
    started = time.monotonic()
    result = run_train(engine, image, root)
    timings["train (20 rounds, 300 rows)"] = time.monotonic() - started
    return root, result


@pytest.fixture(scope="module")
def model_root(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    root, result = trained
    if result.returncode != 0:
        pytest.fail(
            f"train failed with {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False
        )
    return root


@pytest.fixture(scope="module")
def server(
    engine: str, image: str, model_root: Path, timings: dict[str, float], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with serving(engine, image, model_root, tmp_path_factory.mktemp("serve-logs")) as running:
        timings["serve: run to first /ping 200"] = running.startup_seconds
        yield running


# --------------------------------------------------------------------------- tests


def test_image_metadata(engine: str, image: str) -> None:
    result = subprocess.run([engine, "image", "inspect", image], capture_output=True, text=True, check=True)
    info = json.loads(result.stdout)[0]
    config = info.get("Config") or {}
    labels = config.get("Labels") or {}
    assert labels.get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") == "true"
    assert labels.get("com.amazonaws.sagemaker.capabilities.multi-models") == "true"
    assert config.get("Cmd") == ["train-or-serve"]  # trains when TRAINING_JOB_NAME is set (SDK v3), else serves
    assert not config.get("Entrypoint"), "no ENTRYPOINT: SageMaker's `train`/`serve` must be the command"
    path = next((e.split("=", 1)[1] for e in config.get("Env") or [] if e.startswith("PATH=")), "")
    assert path.split(":")[0] == "/opt/program"


def test_no_command_trains_for_a_training_job(engine: str, image: str, tmp_path: Path) -> None:
    """SDK v3's ModelTrainer starts the image without a command, with TRAINING_JOB_NAME set."""
    root = make_ml_root(tmp_path / "ml", {"num_boost_round": "5"})
    result = run_train(engine, image, root, command=(), env=("TRAINING_JOB_NAME=v3-job",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (root / "model" / "model.txt").is_file() and "wrote" in result.stdout + result.stderr


def test_train_writes_model(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    root, result = trained
    assert result.returncode == 0, f"train failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    model = root / "model" / "model.txt"
    metadata = root / "model" / "metadata.json"
    assert model.is_file() and model.stat().st_size > 0
    assert model.read_text().startswith("tree"), "model.txt is not a LightGBM text model"
    assert isinstance(json.loads(metadata.read_text()), dict)
    failure = root / "output" / "failure"
    assert not failure.exists() or failure.stat().st_size == 0


def test_train_bad_hyperparameter_fails_with_reason(engine: str, image: str, tmp_path: Path) -> None:
    root = make_ml_root(tmp_path / "ml", {"objective": "regression", "num_boost_round": "not-a-number"})
    result = run_train(engine, image, root)
    assert result.returncode != 0
    failure = root / "output" / "failure"
    assert failure.is_file(), f"no failure file; output:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    reason = failure.read_text().strip()
    assert reason, "failure file is empty"
    assert "num_boost_round" in reason


def test_a_spot_interrupted_job_resumes_from_its_checkpoint(engine: str, image: str, tmp_path: Path) -> None:
    """Managed Spot training as SageMaker does it: /opt/ml/checkpoints mounted, the instance lost
    without warning (SIGKILL to the container) and the job started again with the same
    checkpoints; the second run resumes and finishes every round. (SDK local mode has no
    checkpoint support, so this is the image run directly.)"""
    rounds = 300
    root = make_ml_root(
        tmp_path / "ml",
        {
            "num_boost_round": str(rounds),
            "num_leaves": "255",
            "min_data_in_leaf": "5",
            "checkpoint_rounds": "10",
            "deterministic": "true",
        },
    )
    (root / "input" / "data" / "train" / "train.csv").write_text(csv_text(make_rows(20000, seed=3)) + "\n")
    (root / "checkpoints").mkdir()
    with training_container(engine, image, root, tmp_path / "first.log", env=("LIGHTGBM_COMPILE_AHEAD=false",)) as job:
        job.wait_for_log("checkpoint saved at round 20", "no checkpoint")
        subprocess.run([engine, "kill", "-s", "KILL", job.name], capture_output=True, timeout=60, check=False)
        job.process.wait(timeout=60)
    saved = json.loads((root / "checkpoints" / "lightgbm-checkpoint.json").read_text())["round"]
    assert 20 <= saved < rounds and not (root / "model" / "model.txt").exists()

    result = run_train(engine, image, root, env=("LIGHTGBM_COMPILE_AHEAD=false",))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"at round {saved} of {rounds}" in result.stdout + result.stderr
    assert json.loads((root / "model" / "metadata.json").read_text())["num_trees"] == rounds


def test_train_stops_on_sigterm_as_pid1(engine: str, image: str, tmp_path: Path) -> None:
    """`train` runs as PID 1 (no init in the image): SIGTERM must still stop it, well before SIGKILL."""
    root = make_ml_root(
        tmp_path / "ml",
        {
            "objective": "regression",
            "num_boost_round": "100000",
            "learning_rate": "0.0001",
            "num_leaves": "127",
            "min_data_in_leaf": "1",
        },
    )
    (root / "input" / "data" / "train" / "train.csv").write_text(csv_text(make_rows(20000, seed=1)) + "\n")
    with training_container(engine, image, root, tmp_path / "train.log") as job:
        # Wait until boosting has started (a per-round metric line such as "[3] train-l2=...").
        job.wait_for_log("[3] ", "train did not start boosting")
        started = time.monotonic()
        subprocess.run(
            [engine, "stop", "-t", str(STOP_GRACE), job.name], capture_output=True, timeout=STOP_GRACE + 60, check=False
        )
        code = job.process.wait(timeout=STOP_GRACE + 30)
        elapsed = time.monotonic() - started
    assert elapsed < STOP_GRACE, f"train ignored SIGTERM ({elapsed:.1f} s): a PID 1 needs a handler or an init"
    assert code not in (0, 137), f"train exited with {code} after SIGTERM"
    failure = root / "output" / "failure"
    assert failure.is_file() and failure.read_text().strip(), "a stopped job must say why in output/failure"


def test_serve_ping_is_empty_200(server: Server) -> None:
    answer = http("GET", server.url + "/ping")
    assert answer.status == 200
    assert answer.body == b""


def test_serve_csv_predictions(server: Server) -> None:
    rows = make_rows(25, seed=11)
    answer = http("POST", server.url + "/invocations", predict_rows(rows), "text/csv")
    assert answer.status == 200, answer.body[:2000]
    assert answer.content_type.split(";")[0].strip() == "text/csv"
    lines = answer.body.decode().strip().split("\n")
    assert len(lines) == len(rows)
    predictions = [float(line) for line in lines]
    assert all(math.isfinite(p) for p in predictions)
    # The model learned something: predictions follow the labels.
    labels = [row[-1] for row in rows]
    mean = sum(labels) / len(labels)
    residual = sum((p - y) ** 2 for p, y in zip(predictions, labels))
    total = sum((y - mean) ** 2 for y in labels)
    assert residual < total


def test_serve_single_row(server: Server) -> None:
    answer = http("POST", server.url + "/invocations", predict_rows(make_rows(1, seed=3)), "text/csv")
    assert answer.status == 200, answer.body[:2000]
    assert len(answer.body.decode().strip().split("\n")) == 1
    float(answer.body)


@pytest.mark.parametrize(
    "payload",
    [b"1.0,2.0,3.0", b"a,b,c,d,e"],
    ids=["wrong-feature-count", "not-numeric"],
)
def test_serve_bad_input_is_json_400(server: Server, payload: bytes) -> None:
    answer = http("POST", server.url + "/invocations", payload, "text/csv")
    assert answer.status == 400, (answer.status, answer.body[:2000])
    assert answer.content_type.split(";")[0].strip() == "application/json"
    error = json.loads(answer.body)
    assert error.get("error") and error.get("message"), error


def test_serve_bind_to_port(engine: str, image: str, model_root: Path, tmp_path: Path) -> None:
    with serving(
        engine, image, model_root, tmp_path, container_port=9090, env={"SAGEMAKER_BIND_TO_PORT": "9090"}
    ) as running:
        answer = http("POST", running.url + "/invocations", predict_rows(make_rows(3, seed=5)), "text/csv")
        assert answer.status == 200, answer.body[:2000]
        assert len(answer.body.decode().strip().split("\n")) == 3


def test_serve_stops_cleanly_on_sigterm(
    engine: str, image: str, model_root: Path, timings: dict[str, float], tmp_path: Path
) -> None:
    with serving(engine, image, model_root, tmp_path) as running:
        assert http("GET", running.url + "/ping").status == 200
        started = time.monotonic()
        stop = subprocess.run(
            [engine, "stop", "-t", str(STOP_GRACE), running.name],
            capture_output=True,
            text=True,
            timeout=STOP_GRACE + 60,
            check=False,
        )
        code = running.process.wait(timeout=STOP_GRACE + 30)
        elapsed = time.monotonic() - started
        timings["serve: SIGTERM to exit"] = elapsed
        assert stop.returncode == 0, stop.stderr
        assert elapsed < STOP_GRACE, f"serve took {elapsed:.1f} s to stop (SIGKILL comes at {STOP_GRACE} s)"
        assert code == 0, f"serve exited with {code} on SIGTERM:\n{running.logs()}"


def test_multi_model_mode_in_the_image(engine: str, image: str, model_root: Path, tmp_path: Path) -> None:
    """SAGEMAKER_MULTI_MODEL=true with /opt/ml/models mounted: lazy TargetModel and the /models API."""
    import shutil
    import tarfile

    root = tmp_path / "mme"
    models = root / "models"
    (models / "layout").mkdir(parents=True)
    shutil.copytree(model_root / "model", models / "layout" / "model")  # SageMaker's models/<name>/model
    with tarfile.open(models / "archive.tar.gz", "w:gz") as tar:
        for name in ("model.txt", "metadata.json"):
            tar.add(model_root / "model" / name, arcname=name)
    body = predict_rows(make_rows(3, seed=11))
    with serving(engine, image, root, tmp_path, env={"SAGEMAKER_MULTI_MODEL": "true"}) as running:
        lazy_answer = http(
            "POST",
            running.url + "/invocations",
            body,
            "text/csv",
            60,
            {"X-Amzn-SageMaker-Target-Model": "archive.tar.gz"},
        )
        assert lazy_answer.status == 200, lazy_answer.body
        lazy = lazy_answer.body.decode().split()
        assert len(lazy) == 3
        load = http(
            "POST",
            running.url + "/models",
            json.dumps({"model_name": "m", "url": "/opt/ml/models/layout/model"}).encode(),
            "application/json",
        )
        assert load.status == 200, load.body
        invoked = http("POST", running.url + "/models/m/invoke", body, "text/csv")
        assert invoked.status == 200 and invoked.body.decode().split() == lazy
        listed = json.loads(http("GET", running.url + "/models").body)
        assert sorted(m["modelName"] for m in listed["models"]) == ["archive.tar.gz", "m"]
        assert http("DELETE", running.url + "/models/m").status == 200
        assert http("POST", running.url + "/models/m/invoke", body, "text/csv").status == 404


# ----------------------------------------------------------- serverless: locked down


#: As Serverless Inference runs a container (and as the issue's `podman run` line says): an unknown
#: non-root uid, a read-only root file system with only /tmp writable, 1 GB, 1 CPU.
LOCKED_DOWN = ("--user", "12345:12345", "--read-only", "--tmpfs", "/tmp", "--memory", "1g", "--cpus", "1")


def open_to_anyone(root: Path) -> Path:
    """The uid in the container owns nothing on the host: let it read the tree and write its output."""
    subprocess.run(["chmod", "-R", "a+rwX", str(root)], check=True)
    return root


def first_answer(running: Server, body: bytes, headers: dict[str, str] | None = None) -> tuple[Response, float]:
    """The first /invocations answer, and the seconds from `run` to it."""
    response = http("POST", running.url + "/invocations", body, "text/csv", timeout=60, headers=headers)
    return response, time.monotonic() - running.started


@pytest.fixture(scope="module")
def locked_down_model(
    engine: str, image: str, timings: dict[str, float], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`train` locked down: 100 trees (the issue's serverless model), written by uid 12345."""
    root = open_to_anyone(
        make_ml_root(tmp_path_factory.mktemp("locked"), {"objective": "regression", "num_boost_round": "100"})
    )
    started = time.monotonic()
    result = run_train(engine, image, root, options=LOCKED_DOWN)
    timings["train locked down (uid 12345, read-only, 1 GB, 1 CPU; 100 trees)"] = time.monotonic() - started
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (root / "model" / "model.txt").stat().st_uid == 12345
    assert "Tree=99" in (root / "model" / "model.txt").read_text()
    return root


def test_serve_locked_down_answers_within_seconds(
    engine: str, image: str, locked_down_model: Path, timings: dict[str, float], tmp_path: Path
) -> None:
    """Single model, /opt/ml read-only as SageMaker mounts it; the compile job runs under its memory bound."""
    rows = make_rows(5, seed=3)
    with serving(engine, image, locked_down_model, tmp_path, options=LOCKED_DOWN, mount=":ro") as running:
        answer, seconds = first_answer(running, predict_rows(rows))
        timings["serve locked down: run to first /invocations 200"] = seconds
        assert answer.status == 200 and len(answer.body.split()) == 5
        deadline = time.monotonic() + 60
        while "compiled model ready" not in running.logs() and time.monotonic() < deadline:
            time.sleep(0.5)  # the compile cache is under the writable /tmp
        # Under 1 GB a compile may take 256 MB: this forest is compiled quickly, into the cache under /tmp.
        assert "compiled model ready" in running.logs(), running.logs()
        assert "/tmp/lightgbm-container-cache/" in running.logs(), running.logs()
        assert "Permission denied" not in running.logs() and "Read-only" not in running.logs(), running.logs()


def test_serve_locked_down_multi_model_and_user_code(
    engine: str, image: str, locked_down_model: Path, timings: dict[str, float], tmp_path: Path
) -> None:
    """Multi-model mode without and with user code, and single-model user code: the code's
    requirements.txt names a package the image lacks (vendored in code/lib), and pip, unable to
    write the image's packages, installs it under /tmp."""
    import shutil

    from support import PROBE_PREDICT_FN, example, write_probe_wheel

    root = tmp_path / "root"
    shutil.copytree(locked_down_model / "model", root / "models" / "plain" / "model")
    shutil.copytree(locked_down_model / "model", root / "model")
    code = root / "model" / "code"
    code.mkdir()
    (code / "inference.py").write_text(example("toolkit/model_fn_only.py") + PROBE_PREDICT_FN)
    (code / "requirements.txt").write_text("lgbmc-probe==1.0\n")
    write_probe_wheel(code / "lib")
    open_to_anyone(root)
    body = predict_rows(make_rows(3, seed=5))
    target = {"X-Amzn-SageMaker-Target-Model": "plain"}
    answers: dict[str, list[float]] = {}
    runs = {
        "multi-model": {"SAGEMAKER_MULTI_MODEL": "true"},
        "multi-model + user code": {
            "SAGEMAKER_MULTI_MODEL": "true",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
        "user code": {},
    }
    for what, env in runs.items():
        with serving(engine, image, root, tmp_path, env=env, options=LOCKED_DOWN, mount=":ro") as running:
            headers = {"Accept": "text/csv", **(target if "multi" in what else {})}
            answer, seconds = first_answer(running, body, headers)
            timings[f"serve locked down, {what}: run to first /invocations 200"] = seconds
            assert answer.status == 200, answer.body
            answers[what] = [float(value) for value in answer.body.split()]
            if "user code" in what:
                assert "the image's packages are read-only: installing into /tmp/" in running.logs(), running.logs()
    tripled = [value * 3 for value in answers["multi-model"]]
    assert answers["multi-model + user code"] == pytest.approx(tripled, rel=1e-9)
    assert answers["user code"] == pytest.approx(tripled, rel=1e-9)


def test_serve_with_nothing_writable_says_what_it_tried(engine: str, image: str, locked_down_model: Path) -> None:
    """--read-only without podman's default tmpfs: no writable temporary directory at all."""
    result = subprocess.run(
        [
            engine,
            "run",
            "--rm",
            "--user",
            "12345:12345",
            "--read-only",
            "--read-only-tmpfs=false",
            "-v",
            f"{locked_down_model}:/opt/ml:ro",
            image,
            "serve",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no writable temporary directory (tried /tmp, /var/tmp, /usr/tmp, /" in result.stderr, result.stderr
