"""Checkpoints: the boosting so far, kept where SageMaker syncs it with S3, so a job that is
stopped, interrupted (managed Spot training) or killed resumes instead of starting over.

SageMaker copies ``/opt/ml/checkpoints`` to ``checkpoint_s3_uri`` while the job runs and back
before a restarted job starts; checkpoints are on when that directory exists. One file,
replaced atomically, holds the model so far, the round it reached and a fingerprint of what
produced it (the hyperparameters but ``num_boost_round``, and each channel's file names,
sizes, rows and feature names): a job resumes only from a checkpoint of the same training,
and says in the log which it did, or why it ignored one.

A resumed job continues with LightGBM's ``init_model``: trees already built are kept, the
scores they give seed the next round. Without row or feature sampling (``bagging_*``,
``feature_fraction*``) the result predicts like an uninterrupted run (tests/process checks
to 1e-9); with sampling the random draws after the resume differ, as with another seed.
Early stopping restarts its patience at the resume.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .channels import Table

log = logging.getLogger("train")

CHECKPOINT_FILE = "lightgbm-checkpoint.json"
FORMAT_VERSION = 1


class TrainingStopped(Exception):
    """SIGTERM arrived (SageMaker StopTrainingJob, Spot interruption): stop between rounds."""


@dataclass(frozen=True)
class CheckpointPolicy:
    """Where checkpoints go (None: off) and how often: after ``every_rounds`` rounds or
    ``every_seconds`` seconds since the last one, whichever comes first, and on SIGTERM."""

    directory: Path | None
    every_rounds: int
    every_seconds: float

    @property
    def file(self) -> Path | None:
        return None if self.directory is None else self.directory / CHECKPOINT_FILE


def fingerprint(params: dict[str, Any], train: Table, validation: Table | None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed from (``num_boost_round`` aside: a job may ask for more)."""

    def channel(table: Table | None) -> dict[str, Any] | None:
        if table is None:
            return None
        return {
            "files": [[name, size] for name, size in table.file_sizes],
            "rows": table.rows,
            "features": hashlib.sha256("\x1f".join(table.feature_names).encode()).hexdigest()[:16],
        }

    return {"hyperparameters": _plain(params), "train": channel(train), "validation": channel(validation)}


def _plain(value: Any) -> Any:
    """JSON's view of a value, so a fingerprint compares equal after a round trip through the file."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _difference(saved: dict[str, Any], now: dict[str, Any]) -> str:
    """The first thing that differs, in words a person can act on."""
    old, new = saved.get("hyperparameters") or {}, now["hyperparameters"]
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            return f"hyperparameter {name} was {old.get(name)!r} in the checkpoint and is {new.get(name)!r} now"
    for channel in ("train", "validation"):
        if saved.get(channel) != now[channel]:
            return f"the {channel} channel's data differs (file names, sizes, rows or feature names)"
    return "its fingerprint differs"


def resume_from(policy: CheckpointPolicy, expected: dict[str, Any], num_boost_round: int) -> tuple[Any, int] | None:
    """The booster and round of a checkpoint of this very training, or None (logging why)."""
    path = policy.file
    if path is None or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        if saved.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {saved.get('format')!r}, not {FORMAT_VERSION}")
        round_, model = int(saved["round"]), str(saved["model"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring checkpoint %s: it cannot be read (%s)", path, exc)
        return None
    if saved.get("fingerprint") != _plain(expected):
        log.warning(
            "ignoring checkpoint %s (round %d): %s; training from the start",
            path,
            round_,
            _difference(saved.get("fingerprint") or {}, _plain(expected)),
        )
        return None
    if round_ > num_boost_round:
        log.warning(
            "ignoring checkpoint %s: it has %d rounds, more than num_boost_round=%d", path, round_, num_boost_round
        )
        return None
    import lightgbm as lgb  # noqa: PLC0415 - LightGBM only when a checkpoint is resumed

    booster = lgb.Booster(model_str=model)
    log.info(
        "resuming from checkpoint %s at round %d of %d (saved %s)", path, round_, num_boost_round, saved.get("saved_at")
    )
    return booster, round_


class Checkpointer:
    """A LightGBM callback: after each round, save when due or when a stop was asked for (then stop).

    :meth:`request_stop` is what the SIGTERM handler calls while training runs: the round in
    progress finishes, is saved, and training ends with :class:`TrainingStopped`."""

    order = 40  # after the metric lines of the same round

    def __init__(self, policy: CheckpointPolicy, expected: dict[str, Any], start_round: int = 0) -> None:
        self.policy = policy
        self.fingerprint = _plain(expected)
        self.saved_round = start_round
        self.saved_at = time.monotonic()
        self.stop_reason: str | None = None

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def __call__(self, env: Any) -> None:
        round_ = env.iteration + 1
        due = (
            round_ - self.saved_round >= self.policy.every_rounds
            or time.monotonic() - self.saved_at >= self.policy.every_seconds
        )
        if self.policy.file is not None and (due or self.stop_reason is not None) and round_ > self.saved_round:
            self.save(env.model, round_)
        if self.stop_reason is not None:
            kept = (
                f"; checkpoint at round {self.saved_round} kept for the next run"
                if self.policy.file is not None
                else ""
            )
            raise TrainingStopped(f"{self.stop_reason} at round {round_}{kept}")

    def save(self, booster: Any, round_: int) -> None:
        """Write the checkpoint beside its final name, flush it, then rename: a reader (or S3's
        sync) sees the previous checkpoint or this one, never half of one."""
        path = self.policy.file
        assert path is not None
        started = time.monotonic()
        document = {
            "format": FORMAT_VERSION,
            "round": round_,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fingerprint": self.fingerprint,
            "model": booster.model_to_string(num_iteration=-1),
        }
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with staged.open("w") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, path)
        self.saved_round, self.saved_at = round_, time.monotonic()
        log.info("checkpoint saved at round %d (%.2f s): %s", round_, self.saved_at - started, path)
