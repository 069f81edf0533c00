"""Fixtures for the unit and process tiers (helpers live in support.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import (
    AWS_TOOLS_REQUIREMENTS,
    AWS_TOOLS_VENV,
    OBJECTIVES,
    REPO,
    ROWS,
    TIMINGS,
    Background,
    Server,
    base_env,
    categorical_root,
    free_port,
    make_root,
    run_train,
    tool_venv,
    use_pickle_packages_first,  # noqa: F401 - scikit-learn importable before LightGBM: see support
)

ENGINE_SCRIPT = REPO / "local_test" / "container_engine.sh"


@pytest.fixture(scope="session")
def engine() -> str:
    """docker or podman, set up by local_test/container_engine.sh (shared by the image tiers).

    Without a working engine the tests that need it are skipped, except in CI (env CI set),
    where that is a failure.
    """
    problem = None
    try:
        result = subprocess.run(["bash", str(ENGINE_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False)
        name = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        if result.returncode != 0 or name not in ("docker", "podman"):
            problem = (
                f"neither docker nor podman works (container_engine.sh exit {result.returncode}): "
                f"{result.stderr.strip()[-2000:]}"
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = f"container engine setup failed: {exc}"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"no container engine in CI: {problem}", pytrace=False)
        pytest.skip(problem)
    return name


@pytest.fixture(scope="session")
def aws_tools() -> Path:
    """bin/ of build/push-tools with `aws` and `moto_server` (tests/push/requirements.txt)."""
    return tool_venv(AWS_TOOLS_VENV, AWS_TOOLS_REQUIREMENTS, "the AWS CLI and moto", ("aws", "moto_server"))


@pytest.fixture
def aws_emulator(aws_tools: Path, tmp_path: Path):
    """A fresh moto server (AWS API emulator, not AWS) on 127.0.0.1:<free port>; yields its URL."""
    port = free_port()
    server = Background(
        [str(aws_tools / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        tmp_path / "moto.log",
        env=base_env(),
    )
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/moto-api/")
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def start_server(tmp_path):
    """Start servers inside a test; every one is stopped when the test ends."""
    servers: list[Server] = []

    def start(root: Path, **extra: str) -> Server:
        server = Server(root, tmp_path / f"serve-{len(servers)}.log", **extra)
        servers.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def user_code_imported_anew(tmp_path_factory):
    """User code a test imports in-process (an inference.py in the test's temporary directory)
    is gone after it, with its sys.path entries: the next test imports its own, as a new worker would."""
    path, before = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    temporary = str(tmp_path_factory.getbasetemp())
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(temporary):
            del sys.modules[name]


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory) -> Path:
    """local_test/test_dir trained by the real `train` (diabetes regression with validation)."""
    root = make_root(tmp_path_factory.mktemp("trained"))
    result = run_train(root)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="session", params=OBJECTIVES)
def categorical_model(request, tmp_path_factory) -> tuple[str, Path]:
    """(objective, ML root) trained by the real `train` from CSV with text categories (and text
    class labels for the classifiers): one per objective, shared by the tiers."""
    root = categorical_root(tmp_path_factory.mktemp("categorical"), request.param)
    result = run_train(root)
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, root


@pytest.fixture(scope="session")
def server(trained_root, tmp_path_factory):
    """One shared regression server (2 workers) for the read-only HTTP tests."""
    server = Server(trained_root, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def timings() -> dict[str, float]:
    """Record a duration (image build, time to the first /ping, a local-mode deploy...) for the run's summary."""
    return TIMINGS


def pytest_terminal_summary(terminalreporter) -> None:
    """Timings of tools installed on first use, and how many generated cases the fuzz tier ran."""
    if TIMINGS:
        terminalreporter.section("timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds:.1f} s")
    hostile = sys.modules.get("hostile")
    if hostile is None or not hostile.TALLY.counts:
        return
    counts = hostile.TALLY.counts
    terminalreporter.section("fuzz cases")
    for key in sorted(counts):
        terminalreporter.write_line(f"{key}: {counts[key]}")
    terminalreporter.write_line(f"total: {sum(counts.values())} generated cases")


@pytest.fixture(scope="session")
def booster(trained_root):
    """LightGBM's own view of the trained diabetes model: what every answer is checked against."""
    import lightgbm as lgb

    return lgb.Booster(model_file=str(trained_root / "model" / "model.txt"))


@pytest.fixture(scope="session")
def expected_rows(booster):
    """LightGBM's predictions for ``support.ROWS``."""
    import numpy as np

    return booster.predict(np.array(ROWS, dtype=float))


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """Two 13-feature regression models trained here, as files: 'small' (100 trees, ~0.3 MB) and
    'other' (20 trees, different predictions); and 20 rows of their features."""
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    features = rng.normal(size=(5000, 13))
    labels = features @ rng.normal(size=13) + np.sin(features[:, 0]) * 3
    out = tmp_path_factory.mktemp("models")
    paths = {}
    for name, rounds in (("small", 100), ("other", 20)):
        params = {"objective": "regression", "num_leaves": 31, "verbosity": -1}
        booster = lgb.train(params, lgb.Dataset(features, labels), rounds)
        paths[name] = out / f"{name}.txt"
        booster.save_model(str(paths[name]))
    return paths, features[:20]


@pytest.fixture(scope="session")
def pickles(tmp_path_factory):
    """support.pickled_models, made once per run."""
    from support import pickled_models

    return pickled_models(tmp_path_factory.mktemp("pickles"))
