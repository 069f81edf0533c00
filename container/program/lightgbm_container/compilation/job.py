"""The compile job: obtain a checked lleaves object for one model, in its own process.

``python -m lightgbm_container.compilation.job serve MODEL CACHE STATUS`` (``serve`` and
multi-model workers start it through :mod:`.launch`) looks, in order, for

1. the fully optimised object in the cache (checked when it was stored; keyed so only this
   host finds it),
2. a fully optimised object ``train`` shipped in the model directory whose key matches this
   host, used after the parity check,
3. nothing: it compiles quickly (no inlining: seconds), reports that object so the workers
   switch, then compiles fully optimised and reports again (``--full-only``: only the latter),

and writes each outcome to STATUS (:mod:`.status`). ``... job ship MODEL`` is ``train``'s
compile-ahead: compile, check, and write the object and its key into the model directory.

The job runs at the lowest CPU priority with one OpenMP thread: it only ever uses what the
workers leave idle. A compiled object that disagrees with LightGBM is never stored.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..model import pickles
from ..model.formats import PICKLE, served_format
from ..observability.logs import configure_logging
from ..packages import use_pickle_packages
from ..settings import log_settings
from .artifact import (
    FULL,
    QUICK,
    ArtifactKey,
    artifact_key,
    cached_object,
    count_leaves,
    estimated_compile_mb,
    shipped_keys,
    shipped_object,
    write_shipped_key,
)
from .status import FAILED, READY, CompileStatus, write_status

log = logging.getLogger("compile")


class Disagreement(Exception):
    pass


class TooLarge(Exception):
    """The compile would need more memory than it may take (``LIGHTGBM_COMPILE_MAX_MB``)."""


def _too_large(leaves: int, options: dict[str, object], memory_mb: int) -> str | None:
    """Why compiling a forest of ``leaves`` leaves with ``options`` must not start (None: it
    fits, or there is no limit)."""
    if not memory_mb:
        return None
    needed = estimated_compile_mb(leaves, options)
    if needed <= memory_mb:
        return None
    how = "fully optimised" if options is FULL else "quickly"
    limit = f"LIGHTGBM_COMPILE_MAX_MB={memory_mb:,}"
    return f"{leaves:,} leaves would need about {needed:,} MB to compile {how}, more than {limit}"


def _load_and_check(model_file: Path, object_file: Path, options: dict[str, object]) -> None:
    """Load ``object_file`` (compiling it first when it does not exist) and check it against LightGBM."""
    import lightgbm  # noqa: PLC0415 - the job loads LightGBM and LLVM only when it compiles (a cache hit does not)
    import lleaves  # noqa: PLC0415 - see above

    from .parity import disagreement  # noqa: PLC0415 - imports LightGBM: see above

    compiled = lleaves.Model(model_file=str(model_file))
    compiled.compile(cache=str(object_file), **options)
    booster = lightgbm.Booster(model_file=str(model_file))
    difference = disagreement(booster, lambda rows: compiled.predict(rows, n_jobs=1))
    if difference is not None:
        raise Disagreement(f"compiled predictions differ from LightGBM (max difference {difference:.3g})")


def compile_checked(model_file: Path, target: Path, options: dict[str, object], shipped: Path | None = None) -> None:
    """Put the object for ``model_file`` at ``target`` only if it agrees with LightGBM: compiled
    with ``options``, or a copy of the ``shipped`` one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".compiling-") as scratch:
        scratch_object = Path(scratch) / "model.o"
        if shipped is not None:
            shutil.copyfile(shipped, scratch_object)
        _load_and_check(model_file, scratch_object, options)
        os.replace(scratch_object, target)  # atomic: a reader sees no object or a whole one


def _why_no_shipped(model_dir: Path, key: ArtifactKey) -> str | None:
    keys = shipped_keys(model_dir)
    if not keys:
        return None
    return (
        "the compiled model in the model directory was built for another host or version ("
        + "; ".join(key.differences(keys[0]))
        + ")"
    )


def obtain(
    model_file: Path,
    cache_dir: Path,
    report: Callable[[CompileStatus], None],
    full_only: bool = False,
    memory_mb: int = 0,
) -> CompileStatus:
    """A checked, fully optimised object for ``model_file`` from the cache, the model directory
    or a compile; unless ``full_only``, a quickly compiled one is reported first. A compile
    estimated to need more than ``memory_mb`` (0: no limit) is not started: the quick object
    is then the final one, or, when even that does not fit, :class:`TooLarge` says why."""
    started = time.monotonic()
    model_bytes = model_file.read_bytes()
    full = artifact_key(model_bytes, FULL)
    target = cached_object(cache_dir, full)
    if target.exists():
        return CompileStatus(READY, str(target), "cache", time.monotonic() - started)
    shipped = shipped_object(model_file.parent, full)
    note = _why_no_shipped(model_file.parent, full) if not shipped.exists() else None
    if shipped.exists():
        try:
            compile_checked(model_file, target, FULL, shipped=shipped)
            return CompileStatus(READY, str(target), "shipped", time.monotonic() - started)
        except Disagreement as exc:
            note = f"the compiled model shipped in {shipped} is not used: {exc}"
    if note:
        log.info("%s; compiling", note)
    leaves = count_leaves(model_bytes)
    full_too_large = _too_large(leaves, FULL, memory_mb)
    if not full_only:
        quick = cached_object(cache_dir, artifact_key(model_bytes, QUICK))
        source = "cache" if quick.exists() else "compiled"
        if not quick.exists():
            if (problem := _too_large(leaves, QUICK, memory_mb)) is not None:
                raise TooLarge(f"not compiled: {problem}")
            log.info("compiling %s with lleaves, quickly (%s)", model_file, QUICK)
            compile_checked(model_file, quick, QUICK)
        if full_too_large is not None:  # the quick object is as good as it gets here
            return CompileStatus(
                READY, str(quick), source, time.monotonic() - started, reason=f"not fully optimised: {full_too_large}"
            )
        report(CompileStatus(READY, str(quick), source, time.monotonic() - started, reason=note, final=False))
    if full_too_large is not None:
        raise TooLarge(f"not compiled: {full_too_large}")
    log.info("compiling %s with lleaves, fully optimised (%s)", model_file, FULL)
    compile_checked(model_file, target, FULL)
    return CompileStatus(READY, str(target), "compiled", time.monotonic() - started, reason=note)


def ship(model_file: Path, memory_mb: int = 0) -> Path:
    """``train``'s compile-ahead: the checked object and its key, in the model directory."""
    model_bytes = model_file.read_bytes()
    if (problem := _too_large(count_leaves(model_bytes), FULL, memory_mb)) is not None:
        raise TooLarge(f"{problem}; serve compiles quickly instead")
    key = artifact_key(model_bytes, FULL)
    target = shipped_object(model_file.parent, key)
    compile_checked(model_file, target, FULL)
    write_shipped_key(model_file.parent, key)
    return target


def _lowest_priority() -> None:
    try:
        os.nice(19)
    except OSError:
        pass


def _become_the_first_to_go() -> None:
    """Under memory pressure the kernel kills this job, not a worker (a full compile of a large
    forest takes gigabytes: bench/compile_options.py)."""
    try:
        Path("/proc/self/oom_score_adj").write_text("1000")
    except OSError:
        pass


def bound_memory(memory_mb: int) -> None:
    """Cap the heap this job may still take at ``memory_mb`` (``RLIMIT_DATA``: private writable
    memory, which is what LLVM allocates), on top of what it holds now. The estimate in
    :func:`_too_large` decides whether to start; this makes sure a compile the estimate got wrong
    fails on its own (a failed allocation ends the job, the workers keep predicting with
    LightGBM) instead of taking a 1 GB serverless container past its memory."""
    if memory_mb <= 0:
        return
    held = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                held = int(line.split()[1]) * 1024
    limit = held + memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _wait_for_turn(lock_file: Path) -> None:
    """Hold ``lock_file`` until this process exits: compiles queue up instead of sharing the cores."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_file.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    globals()["_turn"] = handle  # released by the kernel when the job ends


class Reporter:
    """Writes each outcome to the status file and remembers the best object so far: a job that
    runs out of time or fails while optimising still leaves the quick object in use."""

    def __init__(self, status_file: Path) -> None:
        self.status_file = status_file
        self.usable: CompileStatus | None = None

    def __call__(self, status: CompileStatus) -> None:
        if status.state == READY:
            self.usable = status
            log.info("compiled model %s", status.describe())
        write_status(self.status_file, status)

    def give_up(self, reason: str) -> CompileStatus:
        """The final outcome when the job cannot finish: the quick object if there is one."""
        if self.usable is not None:
            final = dataclasses.replace(self.usable, final=None, reason=f"not fully optimised: {reason}")
        else:
            final = CompileStatus(FAILED, reason=reason)
        write_status(self.status_file, final)
        return final


def _give_up_after(seconds: int, reporter: Reporter) -> None:
    """Bounded in time by the job itself, so no caller has to stay around to stop it."""

    def expire(_signum: int, _frame: object) -> None:
        outcome = reporter.give_up(f"compiling took longer than {seconds} s (LIGHTGBM_COMPILE_TIMEOUT)")
        log.warning("compiled model %s", outcome.describe())
        os._exit(0 if outcome.state == READY else 1)

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def text_model(model_file: Path, derived_dir: Path | None) -> Path:
    """The LightGBM text to compile: the file itself, or a pickle's trees written into
    ``derived_dir`` as the workers write them (:func:`..model.pickles.text_file`: same content,
    same name), so the object the job makes is the one their model file names."""
    if served_format(model_file) != PICKLE:
        return model_file
    assert derived_dir is not None, "a pickle needs --derived-dir"
    use_pickle_packages()  # before LightGBM is imported: its estimators need scikit-learn
    return pickles.text_file(pickles.model_text(pickles.load(model_file, allow=True).booster), derived_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightgbm_container.compilation.job")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="obtain a checked object for serving")
    serve.add_argument("model_file", type=Path)
    serve.add_argument("cache_dir", type=Path)
    serve.add_argument("status_file", type=Path)
    serve.add_argument("--timeout", type=int, default=300, help="give up after this many seconds")
    serve.add_argument("--one-at-a-time", type=Path, help="a lock file: jobs sharing it compile one after another")
    serve.add_argument("--full-only", action="store_true", help="no quick compile first (LIGHTGBM_PREDICTOR=lleaves)")
    serve.add_argument("--derived-dir", type=Path, help="a pickled model's trees are written there as text first")
    ship_command = commands.add_parser("ship", help="compile into the model directory (train)")
    ship_command.add_argument("model_file", type=Path)
    for command in (serve, ship_command):
        command.add_argument(
            "--memory-mb", type=int, default=0, help="do not start a compile estimated to need more (0: no limit)"
        )
    args = parser.parse_args(argv)
    logs = log_settings()  # the same LOG_LEVEL and LOG_FORMAT as the program that started the job
    configure_logging(logs.level, logs.format)
    bound_memory(args.memory_mb)
    if args.command == "ship":
        started = time.monotonic()
        try:
            target = ship(args.model_file, args.memory_mb)
        except Exception as exc:  # noqa: BLE001 - reported to train, which keeps the model regardless
            log.warning("not shipping a compiled model: %s: %s", type(exc).__name__, exc)
            return 1
        log.info("compiled %s in %.1f s: %s", args.model_file.name, time.monotonic() - started, target)
        return 0
    if not args.full_only:  # strict mode: serve waits for it, nothing else runs yet
        _lowest_priority()
    if args.one_at_a_time is not None:
        _wait_for_turn(args.one_at_a_time)
    reporter = Reporter(args.status_file)
    _become_the_first_to_go()
    _give_up_after(args.timeout, reporter)
    try:
        model_file = text_model(args.model_file, args.derived_dir)
        status = obtain(model_file, args.cache_dir, reporter, args.full_only, args.memory_mb)
        reporter(status)
    except TooLarge as exc:
        status = reporter.give_up(str(exc))
        log.warning("compiled model %s", status.describe())
    except Exception as exc:
        log.exception("compiling %s failed", args.model_file)
        status = reporter.give_up(f"{type(exc).__name__}: {exc}")
        log.warning("compiled model %s", status.describe())
    return 0 if status.state == READY else 1


if __name__ == "__main__":
    sys.exit(main())
