"""`train`: read config -> parse hyperparameters -> load channels -> fit -> write model atomically.

Failures caused by the job's input raise :class:`TrainingError`; their message lands in
``<root>/output/failure`` (SageMaker shows its first 1024 characters as FailureReason) and
the process exits non-zero. Anything else is a bug: the full trace goes to the log and the
failure file says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import TrainingError
from ..observability.logs import configure_logging
from ..model import METADATA_FILE, MODEL_FILE, output_kind
from ..compilation.launch import ship_compiled
from ..settings import (MLPaths, SettingsError, compile_ahead_seconds, compile_memory_mb, host_addresses, log_format, ml_paths,
                        network_timeout_seconds)
from .channels import Table, locate, not_numbers, read_channel
from .checkpoints import CheckpointPolicy, Checkpointer, TrainingStopped, fingerprint, resume_from
from .progress import Progress
from . import arrow_tables, distributed, pipe_mode, user_script
from .round_metrics import RoundMetrics
from .hyperparameters import TrainingConfig, parse_hyperparameters

log = logging.getLogger("train")

FAILURE_LIMIT = 1024
#: Set per host by distributed training: not the user's hyperparameters, left out of metadata.json.
NETWORK_PARAMS = ("machines", "num_machines", "local_listen_port", "pre_partition")
TRAIN_CHANNEL, VALIDATION_CHANNEL = "train", "validation"


#: The fit in progress: SIGTERM asks it to stop after its round (and checkpoint); None: stop at once.
_fitting: Checkpointer | None = None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
    except ValueError as exc:
        raise TrainingError(f"{what} ({path}) is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TrainingError(f"{what} ({path}) must be a JSON object")
    return document


def _share(job: distributed.Cluster, table: Table, channel_config: dict[str, Any] | None) -> Table:
    """This host's rows of the train channel: all of a ShardedByS3Key channel (its own files),
    a contiguous range of a FullyReplicated one (every host has every row)."""
    if (channel_config or {}).get("S3DistributionType") == "ShardedByS3Key":
        log.info("train is ShardedByS3Key: this host trains on its own %d rows", table.rows)
        return table
    start, stop = job.row_range(table.rows)
    log.info("train is FullyReplicated: this host (rank %d of %d) trains on rows %d-%d of %d",
             job.rank, job.size, start + 1, stop, table.rows)  # fmt: skip
    return table.rows_between(start, stop)


@dataclass
class Labels:
    """Training labels as LightGBM wants them, plus the original class values for classification."""

    values: np.ndarray
    classes: list[float | int] | None


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def _text_label_error(labels: np.ndarray, table: Table) -> TrainingError:
    import pandas as pd

    row = int(not_numbers(pd.Series(labels))[0])
    source, line = locate(table.sources, row)
    return TrainingError(
        f"{source.display} {source.unit} {line}, column {table.label_index + 1} (the label): {labels[row]!r} is not a number; "
        "a regression label must be numeric (text labels are for classification objectives)"
    )


def encode_labels(kind: str, labels: np.ndarray, params: dict[str, Any], table: Table | None = None) -> Labels:
    """Classification labels -> 0..K-1 (the original values, text included, are kept as ``classes``)."""
    if kind == "regression":
        if labels.dtype == object:
            assert table is not None
            raise _text_label_error(labels, table)
        return Labels(labels, None)
    if labels.dtype == object:  # text labels: every label is a class name, numbers included ("1" and "yes")
        labels = np.array([str(label) for label in labels], dtype=object)
    classes = np.unique(labels)
    if kind == "binary":
        if len(classes) > 2:
            raise TrainingError(
                f"objective {params.get('objective')!r} is binary but the label has {len(classes)} distinct values "
                f"({', '.join(map(str, classes[:10].tolist()))}); use objective=multiclass"
            )
        if labels.dtype != object and np.isin(classes, (0.0, 1.0)).all():
            return Labels(labels, [0, 1])
    if kind == "multiclass":
        declared = params.get("num_class")
        natural = labels.dtype != object and np.array_equal(classes, np.arange(len(classes)))
        if declared is None:
            params["num_class"] = len(classes)
            log.info("num_class not set: using the %d distinct labels", len(classes))
        elif natural and classes.max() < declared:
            return Labels(labels, list(range(int(declared))))
        elif len(classes) > int(declared):
            raise TrainingError(f"num_class={declared} but the label has {len(classes)} distinct values")
    encoded = np.searchsorted(classes, labels).astype(np.float64)
    return Labels(encoded, [c if isinstance(c, str) else _plain_number(c) for c in classes])


def _label_key(value: Any) -> Any:
    return value if isinstance(value, str) else float(value)


def _encode_with(classes: list[Any] | None, labels: np.ndarray, channel: str) -> np.ndarray:
    if classes is None:
        return labels
    text = any(isinstance(c, str) for c in classes)
    keys = [str(v) for v in labels] if text else labels
    lookup = {_label_key(c): i for i, c in enumerate(classes)}
    try:
        unknown = sorted({_label_key(v) for v in set(keys)} - set(lookup), key=str)
    except (TypeError, ValueError):
        raise TrainingError(f"channel {channel!r} has text labels but the train channel's labels are numbers") from None
    if unknown:
        raise TrainingError(f"channel {channel!r} has label value(s) {unknown[:10]} that the train channel does not have")
    return np.array([lookup[_label_key(v)] for v in keys], dtype=np.float64)


def _log_table(channel: str, table: Table) -> None:
    log.info(
        "%s: %d rows, %d features from %d file(s); label column %d (%r)%s",
        channel, table.rows, len(table.feature_names), len(table.files), table.label_index, table.label_name,
        "; header row detected" if table.has_header else "; no header row",
    )  # fmt: skip


def fit(config: TrainingConfig, train: Table, validation: Table | None, round_metrics: RoundMetrics | None = None,
        checkpoints: CheckpointPolicy | None = None, network: dict[str, Any] | None = None):  # fmt: skip
    """Train; with ``checkpoints``, resume from a matching checkpoint and save new ones as it
    goes; with ``network`` (:meth:`.distributed.Cluster.lightgbm_params`), with the other hosts."""
    global _fitting
    import lightgbm as lgb

    params = {"objective": "regression", "verbosity": -1, **config.params, **(network or {})}
    kind = output_kind(str(params["objective"]))
    labels = encode_labels(kind, train.labels, params, train)
    if validation is not None and validation.labels.dtype == object and kind == "regression":
        raise _text_label_error(validation.labels, validation)
    checkpoints = checkpoints or CheckpointPolicy(None, config.checkpoint_rounds, config.checkpoint_seconds)
    expected = fingerprint(params, train, validation)
    resumed = resume_from(checkpoints, expected, config.num_boost_round)
    init_model, start_round = resumed if resumed is not None else (None, 0)
    categorical = train.categorical or "auto"
    # Binned now, so the raw features can go before training (the peak of memory otherwise);
    # a resumed fit needs them for the checkpoint's scores, and on several hosts the bins are
    # agreed over the network LightGBM starts in train(): there, LightGBM bins in train().
    construct = init_model is None and not network

    def binned(table: Table, labels: np.ndarray, reference: Any = None) -> Any:
        dataset = lgb.Dataset(table.features, labels, feature_name=train.feature_names, categorical_feature=categorical,
                              reference=reference, params=params, free_raw_data=True)  # fmt: skip
        if construct:
            try:
                dataset.construct()
            except lgb.basic.LightGBMError as exc:
                raise TrainingError(f"LightGBM rejected the training setup: {exc}") from None
            table.let_go_of_features()
            arrow_tables.release_unused()  # what pyarrow's allocator kept of them goes back to the system
        return dataset

    data = binned(train, labels.values)
    valid_sets, valid_names = [data], ["train"]
    if validation is not None:
        valid_sets.append(binned(validation, _encode_with(labels.classes, validation.labels, VALIDATION_CHANNEL), data))
        valid_names.append(VALIDATION_CHANNEL)
    if train.categorical:
        log.info("categorical features: %s", ", ".join(
            f"{name} ({len(train.categories[name])} categories)" if name in train.categories else f"{name} (codes)"
            for name in train.categorical
        ))  # fmt: skip
    checkpointer = Checkpointer(checkpoints, expected, start_round)
    callbacks: list[Any] = [checkpointer, Progress()] + ([round_metrics] if round_metrics is not None else [])
    if config.early_stopping_rounds:
        if validation is None:
            raise TrainingError("early_stopping_rounds needs a 'validation' channel; add one or remove the hyperparameter")
        callbacks.append(lgb.early_stopping(config.early_stopping_rounds, verbose=False))
    log.info("training %s for up to %d rounds with %s", params["objective"], config.num_boost_round, params)
    if start_round == config.num_boost_round:  # the checkpoint has every round: nothing left to train
        return init_model, params, kind, labels.classes
    _fitting = checkpointer
    try:
        booster = lgb.train(
            params, data, num_boost_round=config.num_boost_round - start_round, init_model=init_model,
            valid_sets=valid_sets, valid_names=valid_names, callbacks=callbacks,
        )  # fmt: skip
    except lgb.basic.LightGBMError as exc:
        if network:  # a host lost mid-training shows as a socket error on the others
            raise TrainingError(f"training across {network['num_machines']} hosts failed: {exc}") from None
        raise TrainingError(f"LightGBM rejected the training setup: {exc}") from None
    finally:
        _fitting = None
    return booster, params, kind, labels.classes


def _metrics(booster: Any) -> dict[str, dict[str, float]]:
    return {data: {name: float(value) for name, value in scores.items()} for data, scores in booster.best_score.items()}


def build_metadata(booster: Any, params: dict[str, Any], kind: str, classes: Any, config: TrainingConfig,
                   train: Table, validation: Table | None) -> dict[str, Any]:  # fmt: skip
    import lightgbm as lgb

    return {
        "format_version": 1,
        "model_file": MODEL_FILE,
        "objective": str(params["objective"]),
        "output": kind,
        "num_class": int(params.get("num_class", 1)),
        "classes": classes,
        "feature_names": train.feature_names,
        "categorical_features": train.categorical,
        "categories": train.categories,  # text categories in code order: serving maps request strings with them
        "label": {"index": train.label_index, "name": train.label_name},
        "best_iteration": int(booster.best_iteration or booster.current_iteration()),
        "num_trees": int(booster.num_trees()),
        "num_boost_round": config.num_boost_round,
        "early_stopping_rounds": config.early_stopping_rounds,
        "metrics": _metrics(booster),
        "hyperparameters": {k: v for k, v in params.items() if k != "verbosity" and k not in NETWORK_PARAMS},
        "rows": {TRAIN_CHANNEL: train.rows, VALIDATION_CHANNEL: validation.rows if validation else 0},
        "versions": {
            "lightgbm": lgb.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "container": __version__,
        },
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_model(model_dir: Path, booster: Any, metadata: dict[str, Any]) -> None:
    """Write to temporary files, then rename: a reader never sees a half-written model."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staged_model = model_dir / f".{MODEL_FILE}.{os.getpid()}.tmp"
    staged_metadata = model_dir / f".{METADATA_FILE}.{os.getpid()}.tmp"
    booster.save_model(str(staged_model))
    staged_metadata.write_text(json.dumps(metadata, indent=2) + "\n")
    for staged in (staged_model, staged_metadata):
        with staged.open("rb") as handle:
            os.fsync(handle.fileno())
    (model_dir / METADATA_FILE).unlink(missing_ok=True)  # never pair a new model with old metadata
    os.replace(staged_model, model_dir / MODEL_FILE)
    os.replace(staged_metadata, model_dir / METADATA_FILE)


def run(paths: MLPaths, raw_hyperparameters: dict[str, Any], compile_seconds: int = 0, compile_memory: int = 0,
        json_logs: bool = False, host_addresses: dict[str, tuple[str, int]] | None = None,
        network_timeout: int = 300) -> None:  # fmt: skip
    """Train and write the model; then, given ``compile_seconds``, compile it ahead within
    ``compile_memory`` MB (:func:`..settings.compile_memory_mb`). Metric lines are printed bare,
    or as JSON log lines with ``json_logs``, and written to ``output/data/metrics.jsonl``.
    On several hosts (resourceconfig.json), with the others (:mod:`.distributed`): only the
    first writes the model and the metric lines; ``host_addresses`` and ``network_timeout``
    come from :func:`..settings.host_addresses` and :func:`..settings.network_timeout_seconds`."""
    started = time.monotonic()
    input_config = _read_json(paths.input_data_config, "inputdataconfig.json")
    config = parse_hyperparameters(raw_hyperparameters)
    if config.ignored:
        log.info("ignoring SageMaker's own hyperparameters: %s", ", ".join(config.ignored))
    port = int(config.params.get("local_listen_port", distributed.DEFAULT_PORT))
    job = distributed.cluster(_read_json(paths.resource_config, "resourceconfig.json"), port, host_addresses, network_timeout)

    def channel(name: str, reference: Table | None = None) -> Table:
        content_type = (input_config.get(name) or {}).get("ContentType")
        with contextlib.ExitStack() as received:
            directory = paths.channel(name)
            if pipe_mode.is_pipe(input_config.get(name)):  # the stream, as a file, while it is read
                directory = received.enter_context(pipe_mode.received(paths.channel(name).parent, name, content_type))
            table = read_channel(
                name, directory, config.label_column, config.header, content_type,
                categorical=config.categorical_feature, reference=reference,
            )  # fmt: skip
        _log_table(name, table)
        return table

    def present(name: str) -> bool:
        if pipe_mode.is_pipe(input_config.get(name)):
            return pipe_mode.fifo(paths.channel(name).parent, name).exists()
        return paths.channel(name).is_dir()

    train = channel(TRAIN_CHANNEL)
    validation = channel(VALIDATION_CHANNEL, train) if present(VALIDATION_CHANNEL) else None
    if validation is not None and len(validation.feature_names) != len(train.feature_names):
        raise TrainingError(
            f"validation has {len(validation.feature_names)} features but train has {len(train.feature_names)}"
        )
    checkpoint_dir = paths.checkpoints if paths.checkpoints.is_dir() else None
    network = None
    if job is not None:
        train = _share(job, train, input_config.get(TRAIN_CHANNEL))
        distributed.rendezvous(job, network_timeout)
        network = job.lightgbm_params(config.params)
        if checkpoint_dir is not None:  # each host's share differs: one host's checkpoint fits no other
            log.warning("checkpoints are not kept when training on %d instances", job.size)
            checkpoint_dir = None
    leads = job is None or job.leads
    round_metrics = RoundMetrics(paths.output_data, json_logs) if leads else None
    checkpoints = CheckpointPolicy(checkpoint_dir, config.checkpoint_rounds, config.checkpoint_seconds)
    try:
        booster, params, kind, classes = fit(config, train, validation, round_metrics, checkpoints, network)
    finally:
        if round_metrics is not None:
            round_metrics.close()
    if not leads:
        assert job is not None
        log.info("host %s trained as rank %d of %d; %s writes the model", job.current, job.rank, job.size, job.hosts[0])
        distributed.finish_together(job, network_timeout + compile_seconds)
        return
    assert round_metrics is not None
    metadata = build_metadata(booster, params, kind, classes, config, train, validation)
    write_model(paths.model, booster, metadata)
    for data, scores in metadata["metrics"].items():
        for name, value in scores.items():
            round_metrics.line(f"final {data}-{name}={value:.6g};")
    log.info(
        "wrote %s (%d trees, best iteration %d) in %.1f s",
        paths.model / MODEL_FILE, metadata["num_trees"], metadata["best_iteration"], time.monotonic() - started,
    )  # fmt: skip
    if compile_seconds:
        ship_compiled(paths.model / MODEL_FILE, compile_seconds, compile_memory)
    if job is not None:
        distributed.finish_together(job, network_timeout)


def write_failure(paths: MLPaths, message: str) -> None:
    try:
        paths.output.mkdir(parents=True, exist_ok=True)
        paths.failure.write_text(message[:FAILURE_LIMIT])
    except OSError:
        log.exception("could not write %s", paths.failure)


def _stop(signum: int, _frame: Any) -> None:
    """SIGTERM: a fit stops after its current round (saving a checkpoint); anything else stops now."""
    reason = f"training was stopped by {signal.Signals(signum).name} before it finished"
    if _fitting is not None:
        _fitting.request_stop(reason)
        return
    raise TrainingStopped(reason)


def main() -> int:
    configure_logging()
    paths = ml_paths()
    signal.signal(signal.SIGTERM, _stop)
    try:
        logs = log_format()  # LOG_FORMAT=json, or a failure naming the bad value
        configure_logging(log_format=logs)
        raw_hyperparameters = _read_json(paths.hyperparameters, "hyperparameters.json")
        if user_script.requested(raw_hyperparameters):
            return user_script.run(raw_hyperparameters, paths, network_timeout_seconds())
        run(paths, raw_hyperparameters, compile_ahead_seconds(), compile_memory_mb(), json_logs=logs == "json",
            host_addresses=host_addresses(), network_timeout=network_timeout_seconds())
    except (TrainingError, SettingsError) as exc:
        log.error("training failed: %s", exc)
        write_failure(paths, f"ClientError: {exc}")
        return 1
    except TrainingStopped as exc:
        log.warning("%s", exc)
        write_failure(paths, str(exc))
        return 143
    except Exception as exc:  # a bug: keep the trace in the log, tell the user where to look
        log.exception("training failed unexpectedly")
        write_failure(paths, f"InternalError: {type(exc).__name__}: {exc} (full trace in the training log)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
