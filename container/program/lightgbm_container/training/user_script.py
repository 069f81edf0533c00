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
from typing import Any, Mapping

from ..errors import TrainingError
from ..settings import MLPaths

log = logging.getLogger("train")

PROGRAM_HYPERPARAMETER = "sagemaker_program"


def requested(hyperparameters: Mapping[str, Any]) -> bool:
    return bool(hyperparameters.get(PROGRAM_HYPERPARAMETER))


def run(hyperparameters: Mapping[str, Any], paths: MLPaths) -> int:
    """Run the user's script with sagemaker-training's building blocks; returns the job's exit code.

    This is ``sagemaker_training.trainer.train()`` with two differences. The script's error
    output is captured (``capture_error=True``) so that ``output/failure`` says what went
    wrong, not only the exit code. And the directories SageMaker always creates are created
    first, for local roots: without ``output/``, sagemaker-training 5.1.4 fails to write
    ``output/failure`` for a failed script and then exits 0 (its ``finally: sys.exit`` runs
    with the success code while the write error propagates), reporting success.
    """
    log.info("training with the user script %s (sagemaker-training)", hyperparameters[PROGRAM_HYPERPARAMETER])
    for directory in (paths.model, paths.output_data):
        directory.mkdir(parents=True, exist_ok=True)
    from sagemaker_training import entry_point, environment, errors, files, intermediate_output, logging_config, runner

    env = environment.Environment()
    logging_config.configure_logger(env.log_level)
    sync = intermediate_output.start_sync(env.sagemaker_s3_output(), env.sagemaker_region) if env.sagemaker_s3_output() else None
    try:
        entry_point.run(
            env.module_dir, env.user_entry_point, env.to_cmd_args(), env.to_env_vars(),
            capture_error=True, runner_type=runner.ProcessRunnerType,
        )  # fmt: skip
    except errors.InstallRequirementsError as exc:
        raise TrainingError(f"installing requirements.txt for {env.user_entry_point} failed (pip's output is in the log): {exc}") from None
    except errors.ClientError as exc:
        raise TrainingError(f"the training script {env.user_entry_point} failed: {exc}") from None
    finally:
        if sync is not None:
            sync.join()
    files.write_success_file()
    return 0
