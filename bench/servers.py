"""Start the two servers under comparison on free loopback ports.

- "ours": the product's `container/program/serve`, driven only through its public
  environment interface (the same variables SageMaker and the process tests use).
- "classic baseline": the classic AWS BYOC sample's stack (nginx -> unix socket ->
  gunicorn with gevent workers -> Flask, see classic_baseline/), launched the way the
  sample's `serve` script does it.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

import processes
from processes import ManagedProcess

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CLASSIC_DIR = BENCH_DIR / "classic_baseline"
DEFAULT_SERVE = REPO_DIR / "container" / "program" / "serve"

# Both servers get the same body limit; it must fit the 100,000-row body (~12 MB).
PAYLOAD_LIMIT_MB = 32


@dataclass
class Server:
    """A running server: where to reach it and the processes behind it."""

    name: str
    base_url: str
    processes: list[ManagedProcess] = field(default_factory=list)
    ready_seconds: float = 0.0

    @property
    def invocations_url(self) -> str:
        return f"{self.base_url}/invocations"


def ensure_tools() -> None:
    """nginx and wrk come from Debian; install them when missing (the benchmark's own setup)."""
    missing = [tool for tool in ("nginx", "wrk") if _which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"{', '.join(missing)} not found; run: sudo apt-get install -y nginx-light wrk")
    print(f"[bench] {', '.join(missing)} missing; installing nginx-light and wrk with apt-get", flush=True)
    install = ["apt-get", "install", "-y", "nginx-light", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(install, check=True)


def _which(tool: str) -> str | None:
    """Like shutil.which, but also looks in /usr/sbin, where Debian puts nginx."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def venv_path() -> str:
    """PATH with the project's virtualenv first, as the image's PATH has its Python first."""
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}{os.pathsep}/usr/sbin"


def start_ours(
    serve: Path,
    ml_root: Path,
    run_dir: Path,
    workers: int,
    ready_timeout: float,
    extra_env: dict[str, str],
    name: str = "ours",
    until_compiled: bool = True,
) -> Server:
    """Run `serve` as SageMaker would, but on a free loopback port and a temporary ML root.

    ``until_compiled``: also wait until every worker switched to the fully optimised compiled
    trees (serve compiles in the background after /ping answers), so figures are of those."""
    if not os.access(serve, os.X_OK):
        raise FileNotFoundError(f"{serve} is missing or not executable (use --only-baseline to skip it)")
    port = processes.free_port()
    env = {
        **os.environ,
        "PATH": venv_path(),
        "SAGEMAKER_BASE_DIR": str(ml_root),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVE_LISTEN_ADDRESS": "127.0.0.1",
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        # The 100,000-row body is above the real-time default of 6 MB.
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(PAYLOAD_LIMIT_MB),
        **extra_env,
    }
    server = Server(name=name, base_url=f"http://127.0.0.1:{port}")
    log_name = name.replace(" ", "-")
    server.processes.append(processes.start(f"{name}: serve", [str(serve)], run_dir / f"{log_name}-serve.log", env=env))
    server.ready_seconds = processes.wait_for_ping(server.base_url, server.processes, ready_timeout)
    background_compile = (
        env.get("LIGHTGBM_PREDICTOR", "auto") == "auto" and env.get("SAGEMAKER_MULTI_MODEL", "") != "true"
    )
    if until_compiled and background_compile and wait_compiled(server, workers, ready_timeout)[1] is None:
        raise processes.ServerNotReady(f"{name}: the workers never switched to the compiled trees; see {run_dir}")
    return server


def wait_compiled(server: Server, workers: int, timeout: float) -> tuple[float | None, float | None]:
    """Poll our /stats until every worker predicts with compiled trees, then until every worker
    has the final (fully optimised) object; returns the seconds each took from now (None: not
    within ``timeout``, or the compile failed)."""
    started = time.monotonic()
    deadline = started + timeout
    first = None
    while time.monotonic() < deadline:
        response = requests.get(f"{server.base_url}/stats", timeout=5)
        if response.status_code == 404:  # a serve from before the background compile: it compiled before /ping
            return 0.0, 0.0
        stats = response.json()
        if first is None and stats.get("workers_predicting_compiled", 0) >= workers:
            first = time.monotonic() - started
        if stats.get("workers_on_final_compile", 0) >= workers:
            return first, time.monotonic() - started
        if (stats.get("compile") or {}).get("state") == "failed":
            return first, None
        time.sleep(0.1)
    return first, None


def render_nginx_conf(run_dir: Path, port: int, socket_path: Path) -> Path:
    """Fill in the sample's nginx.conf (classic_baseline/nginx.conf.template)."""
    template = string.Template((CLASSIC_DIR / "nginx.conf.template").read_text())
    # As root, nginx workers would switch to `nobody`, which cannot enter our private
    # mkdtemp directory to reach the gunicorn socket and the body temp files.
    user_directive = "user root;" if os.geteuid() == 0 else ""
    text = template.safe_substitute(
        user_directive=user_directive,
        run_dir=str(run_dir),
        port=str(port),
        socket_path=str(socket_path),
        max_body_mb=str(PAYLOAD_LIMIT_MB),
    )
    unfilled = re.findall(r"\$\{\w+\}", text)
    if unfilled:
        raise ValueError(f"nginx.conf.template placeholders not filled: {unfilled}")
    conf = run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def start_classic_baseline(ml_root: Path, run_dir: Path, workers: int, ready_timeout: float) -> Server:
    """gunicorn (gevent, `workers` = cores as the sample's serve) on a unix socket, nginx in front."""
    run_dir.mkdir(parents=True, exist_ok=True)
    port = processes.free_port()
    socket_path = run_dir / "gunicorn.sock"
    env = {**os.environ, "PATH": venv_path(), "SAGEMAKER_BASE_DIR": str(ml_root)}
    server = Server(name="classic baseline", base_url=f"http://127.0.0.1:{port}")
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "--timeout",
        "60",
        "-k",
        "gevent",
        "-b",
        f"unix:{socket_path}",
        "-w",
        str(workers),
        "--chdir",
        str(CLASSIC_DIR),
        "predictor:app",
    ]
    server.processes.append(processes.start("baseline: gunicorn", gunicorn, run_dir / "gunicorn.log", env=env))
    conf = render_nginx_conf(run_dir, port, socket_path)
    nginx = [_which("nginx") or "nginx", "-p", str(run_dir), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"]
    server.processes.append(processes.start("baseline: nginx", nginx, run_dir / "nginx.log", env=env))
    server.ready_seconds = processes.wait_for_ping(server.base_url, server.processes, ready_timeout)
    return server
