"""What ``serve`` decides at run time and hands its workers: never read from the environment.

``serve`` resolves these once (the user code in place, the compile job started, the
directories the workers share) and writes them with the configuration into one file its
workers read (:func:`handoff_json` / :func:`read_handoff`), so a worker never re-derives them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import MLPaths
from .serving import ServingSettings


@dataclass(frozen=True)
class Runtime:
    code_dir: Path | None = None  # the user code, once in place (user_code/setup.py)
    #: Where requirements.txt was installed when the image's packages are read-only (user_code/setup.py).
    installed_packages: Path | None = None
    compiled_model: Path | None = None  # compiled before the workers started (LIGHTGBM_PREDICTOR=lleaves)
    compile_status: Path | None = None  # the background compile job the workers switch after (compilation/)
    state_dir: Path | None = None  # multi-model: the registry the workers share (multi_model/registry.py)
    metrics_dir: Path | None = None  # every worker's metrics files (observability/metrics.py)
    health_dir: Path | None = None  # where each worker publishes its state for /ping (serving/health.py)
    derived_model: Path | None = None  # what serve derived from a pickled model, as JSON (model/derived.py)
    #: The workers may unpickle LightGBM estimators and Pipelines or run user code: scikit-learn on
    #: their path, imported once in gunicorn's master (packages.py says why it is not always there).
    scikit_learn: bool = False


def handoff_json(settings: ServingSettings, runtime: Runtime) -> str:
    """The configuration and the run-time decisions, for the workers."""
    return json.dumps({"settings": dataclasses.asdict(settings), "runtime": dataclasses.asdict(runtime)}, default=str)


def read_handoff(text: str) -> tuple[ServingSettings, Runtime]:
    """What ``serve`` handed its workers: read, never re-derived from the environment."""
    raw: dict[str, Any] = json.loads(text)
    settings = dict(raw["settings"])
    settings["paths"] = MLPaths(Path(settings["paths"]["root"]))
    settings["compile_cache_dir"] = Path(settings["compile_cache_dir"])
    settings["inference_output"] = tuple(settings.get("inference_output") or ())
    runtime: dict[str, Any] = {
        name: Path(value) if isinstance(value, str) else value for name, value in raw["runtime"].items()
    }
    return ServingSettings(**settings), Runtime(**runtime)
