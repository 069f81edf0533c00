"""`serve`: start nginx and gunicorn, watch both, drain both on SIGTERM.

The supervisor never imports LightGBM (OpenMP must not be initialised in a process that
forks workers), nor numpy or LLVM (it stays small). It checks the model directory first
(a clear error beats a crash loop; a pickle's trees are derived as text: :mod:`..model.derived`),
then starts gunicorn on a unix socket, nginx in front
of it, and the lleaves compile job beside them (:mod:`..compilation`): the workers predict
with LightGBM at once and switch to the compiled trees when the job has them, so start-up
time does not depend on the model's size. ``LIGHTGBM_PREDICTOR=lleaves`` instead waits
for the compile before starting the workers, as before.

Metrics: every worker writes prometheus-client's files to one directory
(:func:`metrics_directory`, set in the workers' environment before they import anything).
With ``LOG_FORMAT=json`` gunicorn logs
through a JSON logging config, and whatever nginx or a worker prints some other way is
wrapped into JSON lines here (:func:`..observability.logs.forward_lines`).

Health: nginx starts first and answers ``GET /ping`` itself from the verdict this process
keeps (:mod:`.health`), so a ping never queues behind busy workers, and says why the server is
not ready yet while ``requirements.txt`` installs, a strict compile runs or the workers load.

Logs: nginx's access lines reach our stdout through a pipe this process relays in whole lines
(:func:`..observability.logs.relay_lines`). nginx would otherwise open ``/dev/stdout`` as a new
file with its own offset, and with ``serve > file`` the workers' lines would overwrite its lines.

Shutdown order on SIGTERM matters for draining: nginx stops accepting and waits for the
requests it has in flight (which gunicorn is serving), then gunicorn stops gracefully.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..builtin.output_selection import check_default_kinds
from ..builtin.styles import check_style
from ..compilation.launch import CompileJob
from ..compilation.status import READY
from ..errors import UserCodeSetupError
from ..model import pickles
from ..model.derived import Derived
from ..model.files import ModelLoadError, check_model_text, find_model_file
from ..model.formats import PICKLE, served_format
from ..observability.logs import JSON, configure_logging, forward_lines, gunicorn_log_config, relay_lines
from ..settings import (
    Runtime,
    ServingSettings,
    SettingsError,
    child_environment,
    handoff_json,
    inherited_pythonpath,
    serving_settings,
)
from ..settings.resources import available_cores
from ..settings.scratch import NoWritablePlace, unreachable_by_others, writable_temp_dir
from ..user_code.setup import prepare_user_code
from .health import STOPPING, HealthBoard, health_directory
from .http_front import GRACE_SECONDS, PROGRAM_DIR, gunicorn_command, render_nginx_conf

log = logging.getLogger("serve")


#: How often the supervisor re-judges health and looks at its children: a worker that died is
#: out of ``/ping``'s verdict within this time.
WATCH_SECONDS = 0.1


def worker_environment(settings: ServingSettings, runtime: Runtime) -> dict[str, str]:
    changes = {
        # Belt and braces with the per-call thread count: OpenMP in each worker uses its share only.
        "OMP_NUM_THREADS": str(settings.predict_threads),
        "PYTHONUNBUFFERED": "1",
        **settings.malloc_tuning,
    }
    if runtime.metrics_dir is not None:  # prometheus-client reads it when first imported (metrics.py)
        changes["PROMETHEUS_MULTIPROC_DIR"] = str(runtime.metrics_dir)
    if runtime.installed_packages is not None:  # requirements.txt, installed beside a read-only image
        changes["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(runtime.installed_packages), inherited_pythonpath()) if part
        )
    return child_environment(**changes)


def derive_pickle(model_file: Path, directory: Path, run_dir: Path) -> Path:
    """A pickled model's trees and classes written as text before the workers start
    (``python -m lightgbm_container.model.derived``, in its own process: unpickling imports
    scikit-learn, which the workers then need not). Returns the JSON file that says what was
    derived, for the workers; a pickle this container cannot serve raises its reason."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lightgbm_container.model.derived", str(model_file), str(directory)],
        cwd=PROGRAM_DIR,
        env=child_environment(OMP_NUM_THREADS="1"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = process.communicate()
    except BaseException:  # a stop signal while it runs (StoppedBeforeStart): it goes too
        process.kill()
        process.wait()
        raise
    messages = err.decode("utf-8", "replace").strip()
    if process.returncode != 0:
        raise ModelLoadError(messages or f"{model_file} cannot be loaded (exit code {process.returncode})")
    for line in messages.splitlines():  # scikit-learn version skew, said by the loader
        log.warning("%s", line)
    record = run_dir / "derived-model.json"
    record.write_bytes(out)
    return record


@dataclass
class Prepared:
    """What :func:`prepare` decided: the workers' run-time hand-off and the compile job to run
    beside them (None: nothing to compile)."""

    runtime: Runtime
    compile_job: CompileJob | None = None


def prepare(
    settings: ServingSettings, run_dir: Path, announce: Callable[[str], None] = lambda _phase: None
) -> Prepared:
    """Everything decided once, before any worker starts: what the workers get besides their
    configuration, the compile job to run beside them.

    User code first (fetch, install requirements, decide the mode: :mod:`..user_code.setup`).
    Then, in single-model mode, the LightGBM model file is checked (a damaged file would crash
    every worker inside LightGBM, over and over); a pickle's trees are derived as text
    (:func:`derive_pickle`), which both checks it and spares most workers scikit-learn. With
    user code whose ``model_fn`` loads something else, there may be no LightGBM file at all.
    ``announce`` tells ``/ping`` each long step (installing requirements, reading a pickle, a
    strict compile).
    """
    prepared_code = prepare_user_code(settings, run_dir, announce)
    code_dir, code = prepared_code.code_dir, prepared_code.code
    # scikit-learn for workers that may meet a pickle or user code (imported by LightGBM when it can: packages.py).
    runtime = Runtime(
        code_dir=code_dir,
        installed_packages=prepared_code.installed_packages,
        scikit_learn=code_dir is not None or code is not None,
    )
    if settings.multi_model:
        return Prepared(dataclasses.replace(runtime, scikit_learn=runtime.scikit_learn or settings.allow_pickle))
    try:
        model_file, _ = find_model_file(settings.paths.model)
    except ModelLoadError:
        if code is not None:
            return Prepared(runtime)
        raise
    compile_file = model_file
    if served_format(model_file) == PICKLE:
        if not settings.allow_pickle:
            raise ModelLoadError(pickles.REFUSED.format(name=model_file.name))
        if code is None:  # user code's model_fn decides what it loads
            announce(f"the model server is starting: reading {model_file.name} (a pickle)")
            record = derive_pickle(model_file, settings.derived_models_dir, run_dir)
            derived = Derived.from_json(record.read_text())
            log.info("%s holds a %s; its trees: %s", model_file.name, derived.what, derived.model_file)
            compile_file = derived.model_file
            # Only a Pipeline's steps (or classes JSON cannot carry) need scikit-learn in the workers.
            runtime = dataclasses.replace(runtime, derived_model=record, scikit_learn=derived.metadata_file is None)
        else:
            runtime = dataclasses.replace(runtime, scikit_learn=True)
    else:
        check_model_text(model_file.read_bytes(), model_file)
    if settings.predictor_backend == "lightgbm":
        return Prepared(runtime)
    strict = settings.predictor_backend == "lleaves"
    job = CompileJob(
        compile_file,
        settings.compile_cache_dir,
        run_dir / "compile.json",
        settings.compile_timeout_seconds,
        settings.compile_memory_mb,
        full_only=strict,
        derived_dir=settings.derived_models_dir,
    )
    if not strict:
        return Prepared(dataclasses.replace(runtime, compile_status=job.status_file), job)
    log.info(
        "LIGHTGBM_PREDICTOR=lleaves: compiling %s before the workers start (at most %d s)",
        model_file,
        settings.compile_timeout_seconds,
    )
    announce(
        f"the model server is starting: LIGHTGBM_PREDICTOR=lleaves, so {model_file.name} is compiled "
        "before the workers start"
    )
    job.start()
    try:
        status = job.wait()
    except StoppedBeforeStart:
        job.stop()
        raise
    if status.state != READY or status.object is None:
        raise ModelLoadError(f"LIGHTGBM_PREDICTOR=lleaves but the model could not be compiled: {status.describe()}")
    return Prepared(dataclasses.replace(runtime, compiled_model=Path(status.object)))


def metrics_directory(run_dir: Path) -> Path:
    """Where the workers' metric files live: in memory (/dev/shm) when there is one, since each
    worker rewrites them (memory-mapped) twice a second; a disk-backed file adds writebacks."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="lightgbm-metrics-", dir=shm))
    (run_dir / "metrics").mkdir()
    return run_dir / "metrics"


class Supervisor:
    """Starts nginx (at once: it answers ``/ping`` from :attr:`health`), then gunicorn when
    :func:`prepare` is done, watches both, and stops both in order."""

    def __init__(self, settings: ServingSettings, run_dir: Path) -> None:
        self.settings = settings
        self.runtime = Runtime()
        self.run_dir = run_dir
        self.compile_job: CompileJob | None = None
        self.compile_reported = True
        self.socket = self.run_dir / "gunicorn.sock"
        self.health = HealthBoard(health_directory(run_dir))
        self.stopping = False
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.log_forwarders: list[threading.Thread] = []

    def start_front(self) -> None:
        """nginx, before anything slow: ``/ping`` answers 503 with the reason until the workers are up."""
        conf = self.run_dir / "nginx.conf"
        conf.write_text(render_nginx_conf(self.settings, self.run_dir, self.socket))
        json_logs = self.settings.log_format == JSON
        # Own session: a terminal's Ctrl-C reaches only us, and we stop the children in order.
        self.children["nginx"] = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(self.run_dir), "-e", "stderr"],
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if json_logs else None,
        )
        self._start_thread(relay_lines, self.children["nginx"].stdout, name="log-nginx-access")
        if json_logs:
            self._forward(self.children["nginx"].stderr, "nginx", "ERROR")

    def start_workers(self, prepared: Prepared) -> None:
        """gunicorn and its workers with what :func:`prepare` resolved; the compile job beside them."""
        compile_job = prepared.compile_job
        # What the workers share: the multi-model registry (multi_model/registry.py), their
        # metrics' files, their health.
        self.runtime = dataclasses.replace(
            prepared.runtime,
            state_dir=self.run_dir / "multi-model" if self.settings.multi_model else None,
            metrics_dir=metrics_directory(self.run_dir),
            health_dir=self.health.directory,
        )
        self.compile_job = compile_job
        self.compile_reported = compile_job is None
        json_logs = self.settings.log_format == JSON
        log_config = None
        if json_logs:
            log_config = self.run_dir / "gunicorn-logging.json"
            log_config.write_text(json.dumps(gunicorn_log_config(self.settings.log_level)))
        piped = subprocess.PIPE if json_logs else None
        if self.compile_job is not None:  # first: it only ever gets the CPU the workers leave idle
            log.info(
                "compiling %s with lleaves in the background; LightGBM predicts until then", self.compile_job.model_file
            )
            self.compile_job.start()
        settings_file = self.run_dir / "settings.json"
        settings_file.write_text(handoff_json(self.settings, self.runtime))
        self.children["gunicorn"] = subprocess.Popen(  # cwd: gunicorn imports its config module before --chdir
            gunicorn_command(self.settings, self.socket, self.run_dir, settings_file, log_config),
            env=worker_environment(self.settings, self.runtime),
            cwd=PROGRAM_DIR,
            start_new_session=True,
            stdout=piped,
            stderr=piped,
        )
        if json_logs:
            self._forward(self.children["gunicorn"].stdout, "gunicorn", "INFO")
            self._forward(self.children["gunicorn"].stderr, "gunicorn", "WARNING")

    def _start_thread(self, target: Callable[..., None], *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.log_forwarders.append(thread)

    def _forward(self, stream: IO[bytes] | None, logger: str, level: str) -> None:
        assert stream is not None
        self._start_thread(forward_lines, stream, logger, level, name=f"log-{logger}")

    def request_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info(
                "received %s: draining in-flight requests (up to %d s)", signal.Signals(signum).name, GRACE_SECONDS
            )
        self.stopping = True

    def watch(self) -> int:
        """Wait for a stop signal or a child's death; returns serve's exit code."""
        while not self.stopping:
            self.health.refresh(self.children["gunicorn"].pid)
            self.report_compile()
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    log.error("%s exited unexpectedly with code %s; stopping", name, code)
                    self.shutdown()
                    return 1
            time.sleep(WATCH_SECONDS)
        self.shutdown()
        return 0

    def report_compile(self) -> None:
        """Notice the background compile's end; a job that died without a word is reported here
        (the job logs its own outcomes, the workers their switches)."""
        if self.compile_reported:
            return
        assert self.compile_job is not None
        status = self.compile_job.poll()
        if status is not None:
            self.compile_reported = True
            if status.state != READY:
                log.warning("compiled model %s; predicting with LightGBM", status.describe())

    def shutdown(self) -> None:
        self.health.announce(STOPPING)
        if self.compile_job is not None:
            self.compile_job.stop()
        deadline = time.monotonic() + GRACE_SECONDS
        # nginx first: it stops accepting and finishes the requests gunicorn is working on.
        for name, sig in (("nginx", signal.SIGQUIT), ("gunicorn", signal.SIGTERM)):
            child = self.children.get(name)
            if child is None or child.poll() is not None:
                continue
            child.send_signal(sig)
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                child.kill()
                child.wait()
        for forwarder in self.log_forwarders:  # the children's last lines (they end at the pipes' EOF)
            forwarder.join(timeout=2)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.runtime.metrics_dir is not None:  # in /dev/shm, outside the run directory
            shutil.rmtree(self.runtime.metrics_dir, ignore_errors=True)
        log.info("stopped")


class StoppedBeforeStart(Exception):
    pass


def _stop_before_start(_signum: int, _frame: object) -> None:
    raise StoppedBeforeStart()


def _stop_early(supervisor: Supervisor, code: int) -> int:
    """Stop what runs (nginx) when serve ends before the workers started; another signal meanwhile changes nothing."""
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    supervisor.shutdown()
    return code


def make_run_dir() -> Path:
    """serve's own directory, in the writable temporary directory (:mod:`..settings.scratch`),
    reachable by nginx's unprivileged workers when serve runs as root."""
    run_dir = Path(tempfile.mkdtemp(prefix="lightgbm-serve-", dir=writable_temp_dir()))
    run_dir.chmod(0o755)  # nginx workers drop root privileges and must reach the socket
    if os.geteuid() == 0 and (private := unreachable_by_others(run_dir)) is not None:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise NoWritablePlace(
            f"nginx's workers (an unprivileged user) could not reach {run_dir}: {private} is not searchable "
            "by others; point TMPDIR at a directory they can traverse, such as /tmp"
        )
    return run_dir


def main() -> int:
    try:
        settings = serving_settings()
        check_default_kinds(settings.inference_output)
        check_style(settings.response_style)
        run_dir = make_run_dir()
    except NoWritablePlace as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"serve: invalid setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if shutil.which("nginx") is None:
        log.error("nginx is not installed or not on PATH (apt-get install nginx-light)")
        shutil.rmtree(run_dir, ignore_errors=True)
        return 1
    # Until the servers run, a stop signal simply ends serve (compiling can take minutes).
    signal.signal(signal.SIGTERM, _stop_before_start)
    signal.signal(signal.SIGINT, _stop_before_start)
    supervisor = Supervisor(settings, run_dir)
    try:
        supervisor.health.announce("the model server is starting: checking the model and any user code")
        supervisor.start_front()
        prepared = prepare(settings, run_dir, supervisor.health.announce)
    except (ModelLoadError, UserCodeSetupError) as exc:
        log.error("cannot serve: %s", exc)
        return _stop_early(supervisor, 1)
    except StoppedBeforeStart:
        log.info("stopped before the servers started")
        return _stop_early(supervisor, 0)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    mode = "multi-model" if settings.multi_model else "single-model"
    log.info(
        "starting %s server on %s:%d: %d gunicorn %s workers x %d LightGBM thread(s) (from %s), timeout %d s, "
        "max body %d MB, model dir %s",
        mode,
        settings.listen_address,
        settings.port,
        settings.workers,
        "sync" if settings.server_threads == 1 else f"sync ({settings.server_threads} threads)",
        settings.predict_threads,
        settings.predict_threads_from,
        settings.timeout_seconds,
        settings.max_payload_mb,
        settings.paths.models if settings.multi_model else settings.paths.model,
    )
    cores = available_cores()
    if settings.workers * settings.predict_threads > cores:
        log.warning(
            "%d workers x %d threads (%s) oversubscribe the %d core(s) this container may use: "
            "predictions will be slower than with fewer threads",
            settings.workers,
            settings.predict_threads,
            settings.predict_threads_from,
            cores,
        )
    supervisor.start_workers(prepared)
    return supervisor.watch()
