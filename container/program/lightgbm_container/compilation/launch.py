"""Starting a compile job (:mod:`.job`) from ``serve`` or from a multi-model worker.

The job is a separate program, never a fork of the caller: the caller may hold OpenMP
threads (a worker) or must never initialise them (``serve``), and a compile that crashes
LLVM must not take the server with it. The job bounds itself in time; the caller only
notices a job that died without reporting, and reports that in its place.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ..settings import child_environment
from .artifact import SHIPPED_DIR
from .status import COMPILING, FAILED, CompileStatus, read_status, write_status

log = logging.getLogger(__name__)

PROGRAM_DIR = Path(__file__).resolve().parents[2]  # where lightgbm_container is importable from


class CompileJob:
    def __init__(
        self,
        model_file: Path,
        cache_dir: Path,
        status_file: Path,
        timeout_seconds: int,
        memory_mb: int,
        one_at_a_time: Path | None = None,
        full_only: bool = False,
        derived_dir: Path | None = None,
    ) -> None:
        """``derived_dir``: where a pickle's trees are written as text (the workers derive the same file)."""
        self.model_file = model_file
        self.derived_dir = derived_dir
        self.cache_dir = cache_dir
        self.status_file = status_file
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.one_at_a_time = one_at_a_time
        self.full_only = full_only
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the job; its status reads ``compiling`` from now on, never "no job"."""
        write_status(self.status_file, CompileStatus(COMPILING))
        command = [
            sys.executable,
            "-m",
            "lightgbm_container.compilation.job",
            "serve",
            str(self.model_file),
            str(self.cache_dir),
            str(self.status_file),
            "--timeout",
            str(self.timeout_seconds),
            "--memory-mb",
            str(self.memory_mb),
        ]
        if self.one_at_a_time is not None:
            command += ["--one-at-a-time", str(self.one_at_a_time)]
        if self.derived_dir is not None:
            command += ["--derived-dir", str(self.derived_dir)]
        if self.full_only:
            command.append("--full-only")
        env = child_environment(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        self.process = subprocess.Popen(
            command, cwd=PROGRAM_DIR, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def poll(self) -> CompileStatus | None:
        """The outcome once the job has ended (reported for it if it died silently), else None."""
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return None
        status = read_status(self.status_file)
        if status is None or not status.finished:
            status = CompileStatus(
                FAILED, reason=f"the compile job ended with exit code {code} without a result (see the log)"
            )
            write_status(self.status_file, status)
        return status

    def wait(self) -> CompileStatus:
        assert self.process is not None
        self.process.wait()
        status = self.poll()
        assert status is not None
        return status

    def reap_in_background(self) -> None:
        """For a worker that starts a job: a thread that waits for it (no zombie, no silent death)."""
        threading.Thread(target=self.wait, name="compile-job-reaper", daemon=True).start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def ship_compiled(model_file: Path, timeout_seconds: int, memory_mb: int) -> bool:
    """``train``'s compile-ahead: the checked object into the model directory, so that
    ``model.tar.gz`` carries it and ``serve`` on the same kind of host skips the compile.

    Never fails training: a compile that fails, disagrees or runs out of time leaves the
    model as it is (``serve`` then compiles in the background) and says so."""
    command = [
        sys.executable,
        "-m",
        "lightgbm_container.compilation.job",
        "ship",
        str(model_file),
        "--memory-mb",
        str(memory_mb),
    ]
    try:
        result = subprocess.run(
            command, cwd=PROGRAM_DIR, stdin=subprocess.DEVNULL, timeout=timeout_seconds, check=False
        )
    except subprocess.TimeoutExpired:  # run() killed it; its scratch directory stays behind
        log.warning(
            "compiling ahead took longer than %d s (LIGHTGBM_COMPILE_TIMEOUT); serve will compile instead",
            timeout_seconds,
        )
        result = None
    shipped = model_file.parent / SHIPPED_DIR
    for scratch in shipped.glob(".compiling-*"):
        shutil.rmtree(scratch, ignore_errors=True)
    if shipped.is_dir() and not any(shipped.iterdir()):
        shipped.rmdir()
    return result is not None and result.returncode == 0
