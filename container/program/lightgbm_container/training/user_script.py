"""Training with the user's own script: ``Estimator(image_uri=..., entry_point="train.py", source_dir="src")``.

The SDK then sends the hyperparameters ``sagemaker_program`` and
``sagemaker_submit_directory``. When they are there, ``train`` hands the job to AWS's
sagemaker-training toolkit, the library SageMaker's own framework containers run: it fetches
the code (S3, the local-mode mount, or the ``code`` channel), installs its
``requirements.txt``, and runs ``python train.py --<hyperparameter> <value> ...`` with the
``SM_*`` environment (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, ``SM_HPS``, ``SM_HOSTS``,
``SM_CURRENT_HOST``, ``SM_NUM_CPUS``, ``SM_OUTPUT_DATA_DIR``...); a script that fails makes
it write ``output/failure`` with the exit code and the script's error output, and exit non-zero.
Using that library rather than a re-implementation keeps scripts written for the XGBoost,
scikit-learn or PyTorch containers running unchanged, whatever the contract grows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import TrainingError
from ..settings import MLPaths
from .distributed import resolve_hosts

log = logging.getLogger("train")

PROGRAM_HYPERPARAMETER = "sagemaker_program"


def requested(hyperparameters: Mapping[str, Any]) -> bool:
    return bool(hyperparameters.get(PROGRAM_HYPERPARAMETER))


def run(hyperparameters: Mapping[str, Any], paths: MLPaths, network_timeout: int = 300) -> int:
    """Run the user's script with sagemaker-training's building blocks; returns the job's exit code.

    This is ``sagemaker_training.trainer.train()`` (``entry_point.run``, step by step) with
    these differences:

    - the script's error output is captured (``capture_error=True``), so that
      ``output/failure`` says what went wrong, not only the exit code;
    - the directories SageMaker always creates are created first, for local roots: without
      ``output/``, sagemaker-training 5.1.4 fails to write ``output/failure`` for a failed
      script and then exits 0 (its ``finally: sys.exit`` runs with the success code while the
      write error propagates), reporting success;
    - a ``sagemaker_program`` that is not in the submitted code fails the job naming the file
      and where it was looked for (the toolkit runs ``python <missing>`` and reports an empty
      error message);
    - the hosts' names are resolved within ``network_timeout`` seconds
      (``LIGHTGBM_NETWORK_TIMEOUT``) and a name that never resolves fails the job naming it
      (the toolkit retries for 15 minutes, and outside SageMaker, with a copied
      ``resourceconfig.json``, a job can wait that long for its own name).
    """
    program = str(hyperparameters[PROGRAM_HYPERPARAMETER])
    log.info("training with the user script %s (sagemaker-training)", program)
    for directory in (paths.model, paths.output_data):
        directory.mkdir(parents=True, exist_ok=True)
    from sagemaker_training import entry_point, environment, errors, files, intermediate_output, logging_config, runner  # noqa: PLC0415 - sagemaker-training only for a user's own script

    env = environment.Environment()
    logging_config.configure_logger(env.log_level)
    files.download_and_extract(uri=env.module_dir, path=environment.code_dir)
    _check_program(env.user_entry_point, Path(environment.code_dir), env.module_dir)
    resolve_hosts(env.hosts, network_timeout)
    sync = (
        intermediate_output.start_sync(env.sagemaker_s3_output(), env.sagemaker_region)
        if env.sagemaker_s3_output()
        else None
    )
    try:
        entry_point.install(env.user_entry_point, environment.code_dir, capture_error=True)
        env_vars = env.to_env_vars()
        environment.write_env_vars(env_vars)
        runner.get(runner.ProcessRunnerType, env.user_entry_point, env.to_cmd_args(), env_vars).run(
            wait=True, capture_error=True
        )
    except errors.InstallRequirementsError as exc:
        raise TrainingError(
            f"installing requirements.txt for {env.user_entry_point} failed (pip's output is in the log): {exc}"
        ) from None
    except errors.ClientError as exc:
        raise TrainingError(f"the training script {env.user_entry_point} failed: {exc}") from None
    finally:
        if sync is not None:
            sync.join()
    files.write_success_file()
    return 0


def _check_program(program: str, code_dir: Path, source: str) -> None:
    """The entry point must be in the submitted code (a package's module is found by Python itself)."""
    if (code_dir / "setup.py").is_file() or (code_dir / program).is_file():
        return
    present = sorted(str(path.relative_to(code_dir)) for path in code_dir.rglob("*") if path.is_file())
    shown = ", ".join(present[:20]) + (f" and {len(present) - 20} more" if len(present) > 20 else "")
    raise TrainingError(
        f"sagemaker_program={program!r}: there is no {program} in the submitted code ({source}, unpacked to "
        f"{code_dir}), which holds {shown or 'no files'}; set entry_point to a file of source_dir"
    )
