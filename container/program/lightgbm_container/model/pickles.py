"""Models that arrive pickled (``pickle`` or ``joblib``), as most SageMaker LightGBM scripts save them.

A pickle may hold a ``lightgbm.Booster``, a fitted ``LGBMClassifier``, ``LGBMRegressor`` or
``LGBMRanker`` (or a subclass), or a fitted scikit-learn ``Pipeline`` whose last step is one of
those. Whatever it holds, the trees inside are served like a text model: their LightGBM text
(best iteration kept) is written once to the compile cache, so the same compile job, parity
check and switch give them compiled speed. A Pipeline's other steps run in Python first
(:mod:`.pipeline`).

Unpickling runs code from the file. The model artifact is the deployer's own, as for AWS's
own containers, which load pickles by default; ``LIGHTGBM_ALLOW_PICKLE=false`` refuses them.
scikit-learn and joblib are imported here only, when a pickle is loaded: a worker serving a
text model never pays for them.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic_files import write_once
from . import pickle_versions as versions
from .files import ModelLoadError

log = logging.getLogger(__name__)

ACCEPTED = (
    "a lightgbm.Booster, a fitted LGBMClassifier, LGBMRegressor or LGBMRanker, "
    "or a fitted scikit-learn Pipeline ending in one"
)
REFUSED = (
    "{name} is a pickle, and LIGHTGBM_ALLOW_PICKLE=false refuses pickles (unpickling runs code from the file); "
    "save the model as LightGBM text (booster.save_model('model.txt')) or unset LIGHTGBM_ALLOW_PICKLE"
)


@dataclass
class Unpickled:
    """What a pickle holds, as the model path needs it."""

    booster: Any  # the trees: a lightgbm.Booster
    what: str  # how the log describes it: "LGBMClassifier", "Pipeline(SimpleImputer, ..., LGBMRegressor)"
    classes: tuple[Any, ...] | None = None  # the estimator's classes_, as their original values
    preprocess: Any = None  # a Pipeline's steps before the estimator (None: rows go to the trees as they are)
    input_names: tuple[str, ...] | None = None  # the Pipeline's input columns (feature_names_in_), else None


def load(path: Path, allow: bool) -> Unpickled:
    """Unpickle ``path`` (joblib reads plain pickles and its own, compressed or not) and say what it holds."""
    if not allow:
        raise ModelLoadError(REFUSED.format(name=path.name))
    _check_scikit_learn(path)
    import joblib  # noqa: PLC0415 - only a worker serving a pickle pays for joblib and scikit-learn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            obj = joblib.load(path)
        except ModuleNotFoundError as exc:
            raise ModelLoadError(
                f"{path.name} needs the Python module {exc.name!r}, which this image does not have; add it to "
                "code/requirements.txt beside the model (serve installs it before the workers start)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - anything unpickling raises is the file's problem: say what it was
            raise ModelLoadError(versions.unreadable(path, exc, ACCEPTED)) from None
    versions.report_skew(path, [warning.message for warning in caught])
    return classify(obj, path.name)


def _check_scikit_learn(path: Path) -> None:
    """LightGBM's estimators are whole only when scikit-learn was importable before LightGBM was
    imported (:mod:`..packages`): ``serve`` arranges it for the workers that may need it."""
    import lightgbm  # noqa: PLC0415 - the worker has it loaded already

    if not lightgbm.compat.SKLEARN_INSTALLED:
        raise ModelLoadError(
            f"{path.name} is a pickle, but this process imported LightGBM without scikit-learn "
            "(<venv>/pickle-site was not on its path first); serve arranges it: start it through serve"
        )


def classify(obj: Any, name: str) -> Unpickled:
    """What ``obj`` (unpickled, or returned by a user's ``model_fn``) is, or a ModelLoadError naming its type."""
    import lightgbm as lgb  # noqa: PLC0415 - the worker has it loaded already; serve never calls this

    if isinstance(obj, lgb.Booster):
        return Unpickled(obj, "lightgbm.Booster")
    if isinstance(obj, lgb.LGBMModel):
        return _estimator(obj, name, type(obj).__name__)
    steps = getattr(obj, "steps", None)
    if isinstance(steps, list) and steps and hasattr(obj, "named_steps"):
        last = steps[-1][1]
        if not isinstance(last, lgb.LGBMModel):
            raise ModelLoadError(
                f"{name} holds a scikit-learn Pipeline whose last step is a {_type_name(last)}; "
                f"this container serves {ACCEPTED}"
            )
        described = f"Pipeline({', '.join(type(step).__name__ for _, step in steps)})"
        unpickled = _estimator(last, name, described)
        unpickled.preprocess = obj[:-1]
        names = getattr(obj, "feature_names_in_", None)
        count = getattr(obj, "n_features_in_", None)
        if names is not None:
            unpickled.input_names = tuple(str(column) for column in names)
        elif count is not None:
            unpickled.input_names = tuple(f"Column_{index}" for index in range(int(count)))
        else:
            raise ModelLoadError(f"{name} holds a Pipeline that was never fitted; fit it before saving it")
        return unpickled
    raise ModelLoadError(f"{name} holds a {_type_name(obj)}; this container serves {ACCEPTED}")


def _estimator(estimator: Any, name: str, what: str) -> Unpickled:
    booster = getattr(estimator, "_Booster", None)
    if booster is None:
        raise ModelLoadError(
            f"{name} holds a {type(estimator).__name__} that was never fitted; fit it before saving it"
        )
    classes = getattr(estimator, "classes_", None)
    return Unpickled(booster, what, tuple(classes.tolist()) if classes is not None else None)


def _type_name(obj: Any) -> str:
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


def model_text(booster: Any) -> str:
    """The Booster's LightGBM text, as ``Booster.save_model`` writes it (its best iteration when it has one)."""
    return str(booster.model_to_string())


def text_file(text: str, directory: Path) -> Path:
    """``text`` in ``directory`` under its SHA-256, written once, atomically: every worker (and the
    compile job) of a model derives the same file, which the compile job and lleaves read."""
    return write_once(directory, "model", ".txt", text.encode())
