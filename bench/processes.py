"""Start server processes so that none outlives the benchmark.

Each process gets its own session (process group): Ctrl-C in the terminal then reaches
only the benchmark, which stops the servers in order, and whatever a server leaves
behind (nginx or gunicorn children) can be killed by that group's id afterwards.
Every started process is registered, and the registry is emptied from `finally`
blocks, from `atexit`, and on SIGTERM/SIGHUP (turned into SystemExit).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class ManagedProcess:
    """A started process, the log its output goes to, and how to stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM the leader only, as `docker stop` does, then SIGKILL the rest of its group.

        Signalling only the leader lets a server shut its children down itself (the
        behaviour under test on SageMaker); the group kill afterwards catches leftovers.
        """
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"[bench] {self.name} ignored SIGTERM for {timeout:.0f} s; killing it", flush=True)
        _kill_group(self.popen.pid)
        if self.alive():
            self.popen.wait(5)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_registry: list[ManagedProcess] = []


def start(
    name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ManagedProcess:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    process = ManagedProcess(name=name, popen=popen, log_path=log_path)
    _registry.append(process)
    return process


def stop_all() -> None:
    """Stop every registered process, newest first (nginx before the gunicorn behind it)."""
    while _registry:
        process = _registry.pop()
        try:
            process.stop()
        except Exception as error:  # keep going: the others must be stopped too
            print(f"[bench] could not stop {process.name}: {error}", flush=True)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Make SIGTERM/SIGHUP unwind like Ctrl-C does, so `finally` and `atexit` run."""
    atexit.register(stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel picks it when binding to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerNotReady(RuntimeError):
    """A server died or did not answer /ping in time; the message carries its log tail."""


def wait_for_ping(base_url: str, processes: Sequence[ManagedProcess], timeout: float) -> float:
    """Poll GET /ping until 200; returns the seconds it took.

    Fails early when one of the processes behind the URL exits, so a crash at startup
    is reported at once with its log instead of after the whole timeout.
    """
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for process in processes:
            if not process.alive():
                raise ServerNotReady(
                    f"{process.name} exited with code {process.popen.returncode} before /ping answered.\n"
                    f"--- last lines of {process.log_path} ---\n{process.log_tail()}"
                )
        try:
            response = requests.get(f"{base_url}/ping", timeout=2)
            if response.status_code == 200:
                return time.monotonic() - started
            last = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            last = type(error).__name__
        time.sleep(0.25)
    tails = "\n".join(f"--- last lines of {p.log_path} ---\n{p.log_tail()}" for p in processes)
    raise ServerNotReady(f"/ping at {base_url} did not answer 200 within {timeout:.0f} s (last: {last}).\n{tails}")
