"""`train`: read config -> parse hyperparameters -> load channels -> fit -> write model atomically.

:class:`TrainingJob` is one run, step by step, as the README describes a training job. It
owns what a run carries between steps, among them the checkpointer of the fit in progress,
which SIGTERM (StopTrainingJob, a Spot interruption) asks to stop after its round.

Failures caused by the job's input raise :class:`TrainingError`; their message lands in
``<root>/output/failure`` (SageMaker shows its first 1024 characters as FailureReason) and
the process exits non-zero. Anything else is a bug: the full trace goes to the log and the
failure file says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..compilation.launch import ship_compiled
from ..errors import TrainingError
from ..model.conventions import BUILTIN_ALGORITHM
from ..model.files import MODEL_FILE
from ..model.loaded import output_kind
from ..observability.logs import configure_logging
from ..settings import SettingsError, TrainingSettings, ml_paths, training_settings
from ..settings.logs import JSON
from . import arrow_tables, builtin_algorithm, distributed, pipe_mode, user_script
from .channels import Table, read_channel
from .checkpoints import Checkpointer, CheckpointPolicy, TrainingStopped, fingerprint, resume_from
from .hyperparameters import HEADER, LABEL_COLUMN, TrainingConfig, parse_hyperparameters
from .labels import encode_labels, encode_with, text_label_error
from .model_output import NETWORK_PARAMS, TRAIN_CHANNEL, VALIDATION_CHANNEL, build_metadata, write_model
from .progress import Progress
from .round_metrics import RoundMetrics

log = logging.getLogger("train")

FAILURE_LIMIT = 1024
__all__ = ["NETWORK_PARAMS", "TrainingJob", "main"]


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


@dataclass
class Fitted:
    """What a fit produced, for the model files."""

    booster: Any
    params: dict[str, Any]
    kind: str  # regression, binary or multiclass
    classes: list[Any] | None


class TrainingJob:
    """One ``train`` run. ``run`` is the job; each step is a method, in order."""

    def __init__(self, settings: TrainingSettings) -> None:
        self.settings = settings
        self.paths = settings.paths
        self.started = time.monotonic()
        self.input_config: dict[str, Any] = {}
        self.fitting: Checkpointer | None = None  # the fit in progress: SIGTERM asks it to stop after its round
        self.conventions = builtin_algorithm.Conventions(builtin_algorithm.OURS, "")
        self.starting_model: Any = None  # a built-in job's model channel: the Booster training continues from
        self.train_channel = self.train_shown = (
            TRAIN_CHANNEL  # the built-in's may be "training", read from training/train
        )

    # ------------------------------------------------------------------ the job

    def run(self, raw_hyperparameters: dict[str, Any]) -> None:
        """Train and write the model; then compile it ahead when asked to. On several hosts
        (resourceconfig.json), with the others (:mod:`.distributed`): only the first writes."""
        self.input_config = _read_json(self.paths.input_data_config, "inputdataconfig.json")
        self.conventions = builtin_algorithm.choose(
            self.settings.conventions, self.present, self.paths, raw_hyperparameters
        )
        log.info("this job follows %s conventions: %s", self.conventions.name, self.conventions.reason)
        config = self.hyperparameters(raw_hyperparameters)
        cluster = self.cluster(config)
        train, validation = self.channels(config)
        if self.conventions.builtin:
            train, validation, config = self.as_builtin(config, train, validation)
        network = None
        if cluster is not None:
            train, network = self.join(cluster, config, train)
        leads = cluster is None or cluster.leads
        round_metrics = (
            RoundMetrics(self.paths.output_data, self.settings.logs.format == JSON, self.conventions.builtin)
            if leads
            else None
        )
        try:
            fitted = self.fit(config, train, validation, round_metrics, self.checkpoints(config, cluster), network)
        finally:
            if round_metrics is not None:
                round_metrics.close()
        if cluster is not None and not cluster.leads:
            log.info(
                "host %s trained as rank %d of %d; %s writes the model",
                cluster.current,
                cluster.rank,
                cluster.size,
                cluster.hosts[0],
            )
            distributed.finish_together(
                cluster, self.settings.network_timeout_seconds + self.settings.compile_ahead_seconds
            )
            return
        assert round_metrics is not None
        self.write(fitted, config, train, validation, round_metrics)
        if self.settings.compile_ahead_seconds:
            ship_compiled(
                self.paths.model / MODEL_FILE, self.settings.compile_ahead_seconds, self.settings.compile_memory_mb
            )
        if cluster is not None:
            distributed.finish_together(cluster, self.settings.network_timeout_seconds)

    # ------------------------------------------------------------------ the steps

    def hyperparameters(self, raw: dict[str, Any]) -> TrainingConfig:
        """Parsed and checked; a built-in job's over its script's defaults, its target first, no header."""
        if not self.conventions.builtin:
            config = parse_hyperparameters(raw)
        else:
            merged, use_dask = builtin_algorithm.hyperparameters(raw)
            if use_dask:
                log.info(
                    "use_dask=True: the built-in algorithm trains with Dask; here one instance trains as it is "
                    "and several train together over LightGBM's own network (the same data-parallel training)"
                )
            config = parse_hyperparameters(merged)
            config = dataclasses.replace(
                config,
                label_column=config.label_column if LABEL_COLUMN in raw else 0,
                header=config.header if HEADER in raw else False,
            )
        if config.ignored:
            log.info("ignoring SageMaker's own hyperparameters: %s", ", ".join(config.ignored))
        return config

    def cluster(self, config: TrainingConfig) -> distributed.Cluster | None:
        """The job's hosts (None: one instance), from resourceconfig.json."""
        port = int(config.params.get("local_listen_port", distributed.DEFAULT_PORT))
        resources = _read_json(self.paths.resource_config, "resourceconfig.json")
        return distributed.cluster(resources, port, self.settings.host_addresses, self.settings.network_timeout_seconds)

    def channels(self, config: TrainingConfig) -> tuple[Table, Table | None]:
        """The train channel, and the validation channel when there is one (read with train's categories)."""
        if self.conventions.builtin:
            return self.builtin_channels(config)
        train = self.channel(TRAIN_CHANNEL, config)
        validation = self.channel(VALIDATION_CHANNEL, config, train) if self.present(VALIDATION_CHANNEL) else None
        if validation is not None and len(validation.feature_names) != len(train.feature_names):
            raise TrainingError(
                f"validation has {len(validation.feature_names)} features but train has {len(train.feature_names)}"
            )
        return train, validation

    def builtin_channels(self, config: TrainingConfig) -> tuple[Table, Table | None]:
        """The built-in algorithm's layouts (:func:`.builtin_algorithm.layout`), its categorical index applied."""
        where = builtin_algorithm.layout(self.paths, self.present)
        self.train_channel, self.train_shown = where.channel, where.train_name
        subfolder = where.train_dir != self.paths.channel(where.channel)
        train = self.channel(
            where.channel,
            config,
            directory=where.train_dir if subfolder else None,
            shown=where.train_name,
            unnamed="{}",
            ignore=(where.index_file,) if where.index_file is not None else (),
        )
        if where.index_file is not None:
            if config.categorical_feature is not None:
                raise TrainingError(
                    f"both the hyperparameter categorical_feature and {where.channel}/{where.index_file.name} "
                    "name categorical features; keep one"
                )
            positions = builtin_algorithm.categorical_positions(where.index_file, len(train.feature_names))
            named = {train.feature_names[position] for position in positions}
            train.categorical = [name for name in train.feature_names if name in named or name in train.categorical]
            log.info("categorical features from %s: columns %s", where.index_file.name, [p + 1 for p in positions])
        if where.validation_dir is None:
            return train, None
        separate = where.validation_name == VALIDATION_CHANNEL
        validation = self.channel(
            VALIDATION_CHANNEL if separate else where.channel,
            config,
            train,
            directory=None if separate else where.validation_dir,
            shown=where.validation_name,
            unnamed="{}",
        )
        return train, validation

    def as_builtin(
        self, config: TrainingConfig, train: Table, validation: Table | None
    ) -> tuple[Table, Table, TrainingConfig]:
        """The built-in algorithm's holdout when there is no validation data, its starting model
        (a ``model`` channel: incremental training), and its problem type, objective and metric
        from the training labels (a hyperparameter objective or metric wins)."""
        if validation is None:
            kept, held_out = builtin_algorithm.holdout_rows(train.rows)
            log.info(
                "no validation data: %d of the %d training rows (%.0f%%, seed %d, as the built-in algorithm) "
                "are held out to validate; %d rows train",
                len(held_out),
                train.rows,
                builtin_algorithm.HOLDOUT_FRACTION * 100,
                builtin_algorithm.HOLDOUT_SEED,
                len(kept),
            )
            train, validation = train.take(kept), train.take(held_out)
        if self.present(builtin_algorithm.MODEL_CHANNEL):
            scratch = Path(tempfile.mkdtemp(prefix="lightgbm-starting-model-")) / "model"
            self.starting_model = builtin_algorithm.starting_model(
                self.paths.channel(builtin_algorithm.MODEL_CHANNEL), scratch
            )
        problem = builtin_algorithm.problem(train.labels, config.params)
        params = {**builtin_algorithm.problem_defaults(problem.objective), **config.params}
        params["objective"] = problem.objective
        if problem.num_class is not None and "num_class" not in params:
            params["num_class"] = problem.num_class
        params.setdefault("metric", builtin_algorithm.auto_metric(problem.objective))
        log.info("objective %s (%s); metric %s", problem.objective, problem.reason, params["metric"])
        return train, validation, dataclasses.replace(config, params=params)

    def channel(
        self,
        name: str,
        config: TrainingConfig,
        reference: Table | None = None,
        directory: Path | None = None,
        shown: str | None = None,
        unnamed: str = "Column_{}",
        ignore: Sequence[Path] = (),
    ) -> Table:
        """Channel ``name`` (its ContentType and input mode), read from ``directory`` when given (a
        sub-folder of it) and shown as ``shown``; ``unnamed``: column names without a header;
        ``ignore``: files in it that are not data."""
        content_type = (self.input_config.get(name) or {}).get("ContentType")
        shown = shown or name
        with contextlib.ExitStack() as received:
            if directory is None:
                directory = self.paths.channel(name)
                if pipe_mode.is_pipe(self.input_config.get(name)):  # the stream, as a file, while it is read
                    directory = received.enter_context(pipe_mode.received(directory.parent, name, content_type))
            table = read_channel(
                shown,
                directory,
                config.label_column,
                config.header,
                content_type,
                categorical=config.categorical_feature,
                reference=reference,
                unnamed=unnamed,
                ignore=ignore,
            )
        log.info(
            "%s: %d rows, %d features from %d file(s); label column %d (%r)%s",
            shown,
            table.rows,
            len(table.feature_names),
            len(table.files),
            table.label_index,
            table.label_name,
            "; header row detected" if table.has_header else "; no header row",
        )
        return table

    def present(self, name: str) -> bool:
        if pipe_mode.is_pipe(self.input_config.get(name)):
            return pipe_mode.fifo(self.paths.channel(name).parent, name).exists()
        return self.paths.channel(name).is_dir()

    def join(self, cluster: distributed.Cluster, config: TrainingConfig, train: Table) -> tuple[Table, dict[str, Any]]:
        """This host's rows of the train channel, once every host is there; LightGBM's network parameters."""
        train = self.share(cluster, train)
        distributed.rendezvous(cluster, self.settings.network_timeout_seconds)
        return train, cluster.lightgbm_params(config.params)

    def share(self, cluster: distributed.Cluster, table: Table) -> Table:
        """All of a ShardedByS3Key channel (this host's own files), a contiguous range of a
        FullyReplicated one (every host has every row)."""
        if (self.input_config.get(self.train_channel) or {}).get("S3DistributionType") == "ShardedByS3Key":
            log.info("%s is ShardedByS3Key: this host trains on its own %d rows", self.train_shown, table.rows)
            return table
        start, stop = cluster.row_range(table.rows)
        log.info(
            "%s is FullyReplicated: this host (rank %d of %d) trains on rows %d-%d of %d",
            self.train_shown,
            cluster.rank,
            cluster.size,
            start + 1,
            stop,
            table.rows,
        )
        return table.rows_between(start, stop)

    def checkpoints(self, config: TrainingConfig, cluster: distributed.Cluster | None) -> CheckpointPolicy:
        """Checkpoints go to /opt/ml/checkpoints when SageMaker syncs it, on one instance only."""
        directory = self.paths.checkpoints if self.paths.checkpoints.is_dir() else None
        if (
            directory is not None and cluster is not None
        ):  # each host's share differs: one host's checkpoint fits no other
            log.warning("checkpoints are not kept when training on %d instances", cluster.size)
            directory = None
        return CheckpointPolicy(directory, config.checkpoint_rounds, config.checkpoint_seconds)

    def fit(
        self,
        config: TrainingConfig,
        train: Table,
        validation: Table | None,
        round_metrics: RoundMetrics | None = None,
        checkpoints: CheckpointPolicy | None = None,
        network: dict[str, Any] | None = None,
    ) -> Fitted:
        """Train; with ``checkpoints``, resume from a matching checkpoint and save new ones as it
        goes; with ``network`` (:meth:`.distributed.Cluster.lightgbm_params`), with the other hosts."""
        params = {"objective": "regression", "verbosity": -1, **config.params, **(network or {})}
        kind = output_kind(str(params["objective"]))
        labels = encode_labels(kind, train.labels, params, train)
        if validation is not None and validation.labels.dtype == object and kind == "regression":
            raise text_label_error(validation.labels, validation)
        checkpoints = checkpoints or CheckpointPolicy(None, config.checkpoint_rounds, config.checkpoint_seconds)
        expected = fingerprint(params, train, validation)
        resumed = resume_from(checkpoints, expected, config.num_boost_round)
        init_model, start_round = resumed if resumed is not None else (self.starting_model, 0)
        # Binned now, so the raw features can go before training (the peak of memory otherwise);
        # a resumed fit needs them for the checkpoint's scores, and on several hosts the bins are
        # agreed over the network LightGBM starts in train(): there, LightGBM bins in train().
        datasets = _Datasets(params, train, construct=init_model is None and not network)
        datasets.add(TRAIN_CHANNEL, train, labels.values)
        if validation is not None:
            datasets.add(
                VALIDATION_CHANNEL, validation, encode_with(labels.classes, validation.labels, VALIDATION_CHANNEL)
            )
        _log_categorical(train)
        checkpointer = Checkpointer(checkpoints, expected, start_round)
        callbacks = self.callbacks(config, checkpointer, round_metrics, validation is not None)
        log.info("training %s for up to %d rounds with %s", params["objective"], config.num_boost_round, params)
        if start_round == config.num_boost_round:  # the checkpoint has every round: nothing left to train
            return Fitted(init_model, params, kind, labels.classes)
        booster = self.boost(
            params, datasets, config.num_boost_round - start_round, init_model, callbacks, checkpointer, network
        )
        return Fitted(booster, params, kind, labels.classes)

    def callbacks(
        self, config: TrainingConfig, checkpointer: Checkpointer, round_metrics: RoundMetrics | None, validated: bool
    ) -> list[Any]:
        import lightgbm as lgb  # noqa: PLC0415 - only a built-in fit needs LightGBM (a user script runs without it)

        callbacks: list[Any] = [checkpointer, Progress()] + ([round_metrics] if round_metrics is not None else [])
        if config.early_stopping_rounds:
            if not validated:
                raise TrainingError(
                    "early_stopping_rounds needs a 'validation' channel; add one or remove the hyperparameter"
                )
            callbacks.append(lgb.early_stopping(config.early_stopping_rounds, verbose=False))
        return callbacks

    def boost(
        self,
        params: dict[str, Any],
        datasets: _Datasets,
        rounds: int,
        init_model: Any,
        callbacks: list[Any],
        checkpointer: Checkpointer,
        network: dict[str, Any] | None,
    ) -> Any:
        """LightGBM's training itself, with the checkpointer SIGTERM reaches while it runs."""
        import lightgbm as lgb  # noqa: PLC0415 - see callbacks()

        self.fitting = checkpointer
        try:
            return lgb.train(
                params,
                datasets.sets[0],
                num_boost_round=rounds,
                init_model=init_model,
                valid_sets=datasets.sets,
                valid_names=datasets.names,
                callbacks=callbacks,
            )
        except lgb.basic.LightGBMError as exc:
            if network:  # a host lost mid-training shows as a socket error on the others
                raise TrainingError(f"training across {network['num_machines']} hosts failed: {exc}") from None
            raise TrainingError(f"LightGBM rejected the training setup: {exc}") from None
        finally:
            self.fitting = None

    def write(
        self,
        fitted: Fitted,
        config: TrainingConfig,
        train: Table,
        validation: Table | None,
        round_metrics: RoundMetrics,
    ) -> None:
        """``model.txt`` and ``metadata.json``, atomically; the final metric lines."""
        metadata = build_metadata(fitted.booster, fitted.params, fitted.kind, fitted.classes, config, train, validation)
        if self.conventions.builtin:  # served in the built-in's layout of answers, unless told otherwise
            metadata["conventions"] = metadata["response_style"] = BUILTIN_ALGORITHM
        write_model(self.paths.model, fitted.booster, metadata)
        if self.conventions.builtin:
            builtin_algorithm.write_builtin_files(self.paths.model, fitted.booster)
        for data, scores in metadata["metrics"].items():
            for name, value in scores.items():
                round_metrics.line(f"final {data}-{name}={value:.6g};")
        log.info(
            "wrote %s (%d trees, best iteration %d) in %.1f s",
            self.paths.model / MODEL_FILE,
            metadata["num_trees"],
            metadata["best_iteration"],
            time.monotonic() - self.started,
        )

    # ------------------------------------------------------------------ signals

    def stop(self, signum: int, _frame: Any) -> None:
        """SIGTERM: a fit stops after its current round (saving a checkpoint); anything else stops now."""
        reason = f"training was stopped by {signal.Signals(signum).name} before it finished"
        if self.fitting is not None:
            self.fitting.request_stop(reason)
            return
        raise TrainingStopped(reason)


class _Datasets:
    """LightGBM's datasets for the channels, binned at once when ``construct`` (the raw features then go)."""

    def __init__(self, params: dict[str, Any], train: Table, construct: bool) -> None:
        self.params = params
        self.feature_names = train.feature_names
        self.categorical: Any = train.categorical or "auto"
        self.construct = construct
        self.sets: list[Any] = []
        self.names: list[str] = []

    def add(self, name: str, table: Table, labels: np.ndarray) -> None:
        import lightgbm as lgb  # noqa: PLC0415 - see TrainingJob.callbacks()

        dataset = lgb.Dataset(
            table.features,
            labels,
            feature_name=self.feature_names,
            categorical_feature=self.categorical,
            reference=self.sets[0] if self.sets else None,
            params=self.params,
            free_raw_data=True,
        )
        if self.construct:
            try:
                dataset.construct()
            except lgb.basic.LightGBMError as exc:
                raise TrainingError(f"LightGBM rejected the training setup: {exc}") from None
            table.let_go_of_features()
            arrow_tables.release_unused()  # what pyarrow's allocator kept of them goes back to the system
        self.sets.append(dataset)
        self.names.append(name)


def _log_categorical(train: Table) -> None:
    if train.categorical:
        described = (
            f"{name} ({len(train.categories[name])} categories)" if name in train.categories else f"{name} (codes)"
            for name in train.categorical
        )
        log.info("categorical features: %s", ", ".join(described))


def write_failure(failure: Path, message: str) -> None:
    try:
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(message[:FAILURE_LIMIT])
    except OSError:
        log.exception("could not write %s", failure)


def main() -> int:
    configure_logging()
    failure = ml_paths().failure
    job: TrainingJob | None = None
    try:
        settings = training_settings()  # LOG_LEVEL, LOG_FORMAT..., or a failure naming the bad value
        configure_logging(settings.logs.level, settings.logs.format)
        failure = settings.paths.failure
        job = TrainingJob(settings)
        signal.signal(signal.SIGTERM, job.stop)
        raw_hyperparameters = _read_json(settings.paths.hyperparameters, "hyperparameters.json")
        if user_script.requested(raw_hyperparameters):
            return user_script.run(raw_hyperparameters, settings.paths, settings.network_timeout_seconds)
        job.run(raw_hyperparameters)
    except (TrainingError, SettingsError) as exc:
        log.error("training failed: %s", exc)
        write_failure(failure, f"ClientError: {exc}")
        return 1
    except TrainingStopped as exc:
        log.warning("%s", exc)
        write_failure(failure, str(exc))
        return 143
    except Exception as exc:  # a bug: keep the trace in the log, tell the user where to look
        log.exception("training failed unexpectedly")
        write_failure(failure, f"InternalError: {type(exc).__name__}: {exc} (full trace in the training log)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
