"""SageMaker's ``/opt/ml`` layout, rooted anywhere (``SAGEMAKER_BASE_DIR``, as AWS's toolkits allow)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ML_ROOT = "/opt/ml"


@dataclass(frozen=True)
class MLPaths:
    """SageMaker's /opt/ml layout, rooted anywhere (``SAGEMAKER_BASE_DIR``) for local runs."""

    root: Path

    @property
    def input_config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.input_config / "hyperparameters.json"

    @property
    def input_data_config(self) -> Path:
        return self.input_config / "inputdataconfig.json"

    @property
    def resource_config(self) -> Path:
        return self.input_config / "resourceconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        """SageMaker syncs it with ``checkpoint_s3_uri``; it exists only when the job has one."""
        return self.root / "checkpoints"

    @property
    def models(self) -> Path:
        """Multi-model endpoints: SageMaker extracts each model under here."""
        return self.root / "models"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def failure(self) -> Path:
        return self.output / "failure"


def ml_paths(env: Mapping[str, str] | None = None) -> MLPaths:
    env = os.environ if env is None else env
    return MLPaths(Path(env.get("SAGEMAKER_BASE_DIR", "").strip() or DEFAULT_ML_ROOT))
