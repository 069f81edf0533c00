"""``GET /ping`` answered at once, whatever the workers are doing: from state, not by a worker.

SageMaker replaces an instance whose ``/ping`` does not answer within 2 s. A sync worker
busy with a long request (a large Batch Transform body, contributions for many rows, a slow
``predict_fn``) cannot answer, so a ping routed to the workers waits until one is free: 46 s
was measured behind two busy workers. So the workers never answer it. Instead:

- each worker, once its model is loaded (or failed to load), publishes its state as a file
  ``workers/<pid>.json`` (:func:`publish_worker`): ``{"problem": null}`` or the reason;
- ``serve`` (:class:`HealthBoard`, every 0.1 s in its watch loop) keeps the verdict in two
  files: ``healthy`` exists when at least one *live* gunicorn worker has its model and none
  failed; otherwise ``problem.json`` holds the 503 body, naming why (the phase before the
  workers run: installing ``requirements.txt``, compiling; the workers still loading; a
  worker whose ``model_fn`` raised; no worker alive while gunicorn replaces them);
- nginx answers ``/ping`` from those files (``nginx.conf.template``): a ``stat`` per ping,
  never a queue.

A worker is alive when ``/proc/<pid>`` shows a process that is not a zombie and whose parent
is the gunicorn master: a worker killed or exited drops out within one refresh, however it
ended. The Flask ``/ping`` route still answers from the store for in-process use and for
``gunicorn wsgi:app`` without ``serve``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ..atomic_files import write_atomically
from ..errors import ModelUnavailable, error_body

log = logging.getLogger("serve")

HEALTHY_FILE = "healthy"
PROBLEM_FILE = "problem.json"
WORKERS_DIR = "workers"

STARTING = "the model server is starting: the workers are loading the model"
NO_WORKER = "no model server worker is alive: gunicorn is starting new ones (the log says why the others exited)"
STOPPING = "the model server is stopping"


def health_directory(run_dir: Path) -> Path:
    """Where ``serve`` keeps the verdict and the workers publish their state (inside its run directory)."""
    return run_dir / "health"


def publish_worker(health_dir: Path, problem: str | None) -> None:
    """In a worker, once it can answer (``problem`` None) or knows it cannot (the reason)."""
    write_atomically(health_dir / WORKERS_DIR / f"{os.getpid()}.json", json.dumps({"problem": problem}).encode())


def _alive_child(pid: int, parent: int) -> bool:
    """A running (not zombie) process whose parent is ``parent``: a pid reused by another process does not count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (command) ": state, ppid, ...
    return len(fields) > 1 and fields[0] not in ("Z", "X") and fields[1] == str(parent)


class HealthBoard:
    """The verdict nginx answers ``/ping`` with, kept by ``serve`` in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.workers = directory / WORKERS_DIR
        self.workers.mkdir(parents=True, exist_ok=True)
        self.phase = STARTING  # why not healthy while no worker runs (set by serve as it prepares)
        self.some_worker_was_ready = False
        self.verdict: str | bool | None = False  # False: nothing written yet; None: healthy; else the problem
        self._write(self.phase, logged=False)

    def announce(self, phase: str) -> None:
        """Before the workers run: what ``serve`` is doing (``/ping`` answers 503 saying so)."""
        self.phase = phase
        self._write(phase, logged=False)  # serve logs each step itself

    def refresh(self, gunicorn_pid: int | None) -> str | None:
        """Re-judge from the workers' files; returns the problem (None: healthy)."""
        if gunicorn_pid is None:
            problem = self.phase
        else:
            states = self._live_states(gunicorn_pid)
            failed = [state for state in states if state is not None]
            if failed:
                problem = failed[0]
            elif states:
                problem = None
                self.some_worker_was_ready = True
            else:
                problem = NO_WORKER if self.some_worker_was_ready else STARTING
        self._write(problem)
        return problem

    def _live_states(self, gunicorn_pid: int) -> list[str | None]:
        states = []
        for path in self.workers.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else 0
            if not _alive_child(pid, gunicorn_pid):
                path.unlink(missing_ok=True)
                continue
            try:
                states.append(json.loads(path.read_bytes()).get("problem"))
            except (OSError, ValueError):
                continue  # replaced or removed while read: the next refresh sees it
        return states

    def _write(self, problem: str | None, logged: bool = True) -> None:
        if problem == self.verdict:
            return
        healthy = self.directory / HEALTHY_FILE
        if problem is None:
            healthy.touch()
            log.info("healthy: /ping answers 200")
        else:
            write_atomically(self.directory / PROBLEM_FILE, error_body(ModelUnavailable(problem)))
            healthy.unlink(missing_ok=True)
            if logged:
                log.info("not healthy: /ping answers 503: %s", problem)
        self.verdict = problem
