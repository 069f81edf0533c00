"""Whose conventions a model follows: ours, or those of SageMaker's built-in LightGBM algorithm.

The built-in algorithm (JumpStart's ``lightgbm-classification-model`` and
``lightgbm-regression-model``) saves ``model.pkl`` (a joblib'd Booster) with
``__models_info__.json`` beside it, and its clients parse answers in its own layout
(``{"probabilities": [...]}``, ``{"prediction": [...]}``). A model in that layout, or one our
``train`` wrote from a job in the built-in's layout (its metadata says so), answers in that
layout by default (:mod:`..builtin.styles.builtin_algorithm`); every other model in ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The built-in algorithm's conventions: the response style's name, and train's ``conventions``.
BUILTIN_ALGORITHM = "builtin-algorithm"
#: What the built-in algorithm's training writes beside ``model.pkl`` (``{"is_trained_on_input_data": true}``).
MODELS_INFO = "__models_info__.json"
BUILTIN_MODEL_FILE = "model.pkl"


def response_style(model_file: Path, metadata: dict[str, Any]) -> str | None:
    """The style a model answers in by default: what its metadata names, the built-in algorithm's
    for its own layout (``model.pkl`` beside ``__models_info__.json``), else None (the standard one)."""
    named = metadata.get("response_style")
    if isinstance(named, str) and named:
        return named
    if model_file.name == BUILTIN_MODEL_FILE and (model_file.parent / MODELS_INFO).is_file():
        return BUILTIN_ALGORITHM
    return None
