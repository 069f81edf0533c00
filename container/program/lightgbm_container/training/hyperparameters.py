"""SageMaker hyperparameters -> typed training configuration.

SageMaker hands every value over as a string, in one of two encodings depending on the
client: the plain ``Estimator`` sends ``str(value)`` (``"0.05"``, ``"True"``), framework
estimators send JSON (``"\\"gbdt\\""``, ``"true"``). Both decode to the same Python value.

LightGBM knows its parameters under many aliases (``eta``, ``n_estimators``...). We map
every alias to its canonical name using LightGBM's own alias table, reject unknown names
with a suggestion (LightGBM itself only warns, and a typo would silently train the wrong
model), and leave value checking to LightGBM, whose messages name the parameter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import TrainingError, did_you_mean

#: Keys SageMaker or its SDK add on their own; never LightGBM parameters.
IGNORED_PREFIXES = ("sagemaker_", "_tuning_objective_metric", "_sagemaker")

#: Our own hyperparameters (LightGBM's CLI has parameters of these names for its file
#: reader; we read the CSV ourselves, so here they mean what the README says).
LABEL_COLUMN = "label_column"
HEADER = "header"
CHECKPOINT_ROUNDS, CHECKPOINT_SECONDS = "checkpoint_rounds", "checkpoint_seconds"
DEFAULT_NUM_BOOST_ROUND = 100
#: Checkpoint after this many rounds or seconds, whichever comes first (and on SIGTERM): a
#: short job is not slowed by saving, a long one loses at most a couple of minutes to a kill.
DEFAULT_CHECKPOINT_ROUNDS, DEFAULT_CHECKPOINT_SECONDS = 50, 120.0


@dataclass(frozen=True)
class TrainingConfig:
    params: dict[str, Any]  # canonical LightGBM parameter names -> values
    num_boost_round: int = DEFAULT_NUM_BOOST_ROUND
    early_stopping_rounds: int | None = None
    label_column: str | int = "last"
    header: bool | None = None  # None: detect
    ignored: tuple[str, ...] = field(default=())
    categorical_feature: tuple[str | int, ...] | None = None  # None: text columns are detected
    checkpoint_rounds: int = DEFAULT_CHECKPOINT_ROUNDS
    checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS


def decode_value(raw: Any) -> Any:
    """One hyperparameter value from either SDK encoding to a Python value."""
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


@lru_cache(maxsize=1)
def lightgbm_aliases() -> dict[str, str]:
    """Every LightGBM parameter name and alias -> its canonical name, from LightGBM itself."""
    from lightgbm.basic import _ConfigAliases  # noqa: PLC0415 - private, but the only complete table; lightgbm is pinned

    table = _ConfigAliases._get_all_param_aliases()
    return {alias: canonical for canonical, aliases in table.items() for alias in aliases}


def _suggest(name: str, aliases: dict[str, str], ours: set[str]) -> str:
    """'; did you mean ...?' with the *canonical* name: a misspelling matches whichever alias it
    resembles most (``num_leafs`` ~ ``num_leaf``), but the name to write is ``num_leaves``."""
    close = did_you_mean(name, sorted(set(aliases) | ours))
    if close is None:
        return ""
    canonical = aliases.get(close, close)
    also = f" (LightGBM also accepts the alias {close!r})" if canonical != close else ""
    return f"; did you mean {canonical!r}?{also}"


def _whole_number(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise TrainingError(f"hyperparameter {name}={value!r} must be a whole number >= {minimum}")
    return int(value)


def parse_hyperparameters(raw: Mapping[str, Any]) -> TrainingConfig:
    """Validate and convert; raises TrainingError naming the parameter at fault."""
    aliases = lightgbm_aliases()
    ours = {LABEL_COLUMN, HEADER, CHECKPOINT_ROUNDS, CHECKPOINT_SECONDS}
    params: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    ignored = []
    label_column: str | int = "last"
    header: bool | None = None
    checkpoint_rounds, checkpoint_seconds = DEFAULT_CHECKPOINT_ROUNDS, DEFAULT_CHECKPOINT_SECONDS
    for name, raw_value in raw.items():
        if name.startswith(IGNORED_PREFIXES):
            ignored.append(name)
            continue
        value = decode_value(raw_value)
        if name == LABEL_COLUMN:
            label_column = _label_column(value)
            continue
        if name in (HEADER, "has_header"):
            header = _header(value)
            continue
        if name == CHECKPOINT_ROUNDS:
            checkpoint_rounds = _whole_number(name, value, 1)
            continue
        if name == CHECKPOINT_SECONDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise TrainingError(f"hyperparameter {name}={value!r} must be a number of seconds > 0")
            checkpoint_seconds = float(value)
            continue
        canonical = aliases.get(name)
        if canonical is None:
            raise TrainingError(f"unknown hyperparameter {name!r}{_suggest(name, aliases, ours)}")
        if canonical in given_as:
            raise TrainingError(
                f"hyperparameters {given_as[canonical]!r} and {name!r} both set LightGBM's {canonical!r}; keep one"
            )
        given_as[canonical] = name
        params[canonical] = value
    num_boost_round = _whole_number(
        given_as.get("num_iterations", "num_boost_round"), params.pop("num_iterations", DEFAULT_NUM_BOOST_ROUND), 1
    )
    early_stopping = params.pop("early_stopping_round", None)
    categorical = params.pop("categorical_feature", None)
    if early_stopping is not None:
        early_stopping = _whole_number(given_as["early_stopping_round"], early_stopping, 0) or None
    return TrainingConfig(
        params=params,
        num_boost_round=num_boost_round,
        early_stopping_rounds=early_stopping,
        label_column=label_column,
        header=header,
        ignored=tuple(ignored),
        categorical_feature=_categorical_feature(categorical) if categorical is not None else None,
        checkpoint_rounds=checkpoint_rounds,
        checkpoint_seconds=checkpoint_seconds,
    )


def _categorical_feature(value: Any) -> tuple[str | int, ...]:
    """LightGBM's spellings: ``"0,3"``, ``"name:color,size"``, ``[0, 3]``, ``3``; and plain names
    (``"color,size"``). Indices count features, the label not included, as LightGBM does."""
    if isinstance(value, bool):
        raise TrainingError(f"categorical_feature={value!r}: give feature names or indices, e.g. 'color,size' or '0,3'")
    if isinstance(value, (int, float)):
        value = [value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("name:"):
            return tuple(name.strip() for name in text[len("name:") :].split(",") if name.strip())
        value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list):
        raise TrainingError(f"categorical_feature={value!r}: give feature names or indices, e.g. 'color,size' or '0,3'")
    references: list[str | int] = []
    for item in value:
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, str) and item.lstrip("-").isdigit():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise TrainingError(f"categorical_feature entry {item!r}: give a feature name or index")
        references.append(item)
    return tuple(references)


def _label_column(value: Any) -> str | int:
    if isinstance(value, bool):
        raise TrainingError(f"label_column={value!r}: use 'last', 'first', a column index or a header name")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value:
        return value
    raise TrainingError(f"label_column={value!r}: use 'last', 'first', a column index or a header name")


def _header(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() == "auto":
        return None
    raise TrainingError(f"header={value!r} must be true, false or auto")
