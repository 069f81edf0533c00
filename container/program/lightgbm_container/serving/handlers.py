"""Which handler serves a model directory: the one place that decides between the built-in
LightGBM behaviour and user code (see :mod:`..user_code`).
"""

from __future__ import annotations

from pathlib import Path

from ..settings import ServingSettings
from .builtin import BuiltinOptions, LightGBMHandler
from .handler import Handler


def builtin_options(settings: ServingSettings, root: Path | None = None) -> BuiltinOptions:
    return BuiltinOptions(
        predict_threads=settings.predict_threads,
        max_values=settings.max_payload_bytes,  # one feature value per byte of the largest body
        compiled_model=settings.compiled_model,
        root=root,
        default_accept=settings.default_accept,
    )


def handler_for(model_dir: Path, settings: ServingSettings, root: Path | None = None) -> Handler:
    """The handler for ``model_dir``: user code when the model or the container brings some, else built-in."""
    return LightGBMHandler(builtin_options(settings, root))
