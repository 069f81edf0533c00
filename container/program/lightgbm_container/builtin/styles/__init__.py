"""Response styles: how an answer is laid out, beside the codecs' own layouts.

A style is a module of this package defining ``STYLE`` (a :class:`.style.ResponseStyle`): the
encoders it replaces, by media type. The codecs' layouts are the ``standard`` style. Adding a
style (another JSON shape for the same output kinds, as SageMaker's built-in algorithm
answers) is adding one module; ``LIGHTGBM_RESPONSE_STYLE`` and a model's metadata choose it.
"""

from __future__ import annotations

import importlib
import pkgutil

from .style import STANDARD, ResponseStyle


def _discover() -> dict[str, ResponseStyle]:
    found = {STANDARD.name: STANDARD}
    for module_info in pkgutil.iter_modules(__path__):
        style = getattr(importlib.import_module(f"{__name__}.{module_info.name}"), "STYLE", None)
        if isinstance(style, ResponseStyle):
            found[style.name] = style
    return found


STYLES = _discover()
