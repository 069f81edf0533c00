"""Response styles: how an answer is laid out, beside the codecs' own layouts.

A style is a module of this package defining ``STYLE`` (a :class:`.style.ResponseStyle`): the
encoders it replaces, by media type. The codecs' layouts are the ``standard`` style. Adding a
style (another JSON shape for the same output kinds, as SageMaker's built-in algorithm
answers) is adding one module; ``LIGHTGBM_RESPONSE_STYLE`` chooses one for every model, else
each model has its own (:attr:`..model.loaded.LoadedModel.response_style`: the built-in
algorithm's for a model in its layout), else ``standard``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ...settings import SettingsError
from .style import STANDARD, ResponseStyle

#: LIGHTGBM_RESPONSE_STYLE's default: each model answers in its own style.
AUTO_STYLE = "auto"


def _discover() -> dict[str, ResponseStyle]:
    found = {STANDARD.name: STANDARD}
    for module_info in pkgutil.iter_modules(__path__):
        style = getattr(importlib.import_module(f"{__name__}.{module_info.name}"), "STYLE", None)
        if isinstance(style, ResponseStyle):
            found[style.name] = style
    return found


STYLES = _discover()


def check_style(name: str, variable: str = "LIGHTGBM_RESPONSE_STYLE") -> str:
    """A style the container has (or ``auto``); else a SettingsError listing them (``serve`` stops at start)."""
    if name != AUTO_STYLE and name not in STYLES:
        raise SettingsError(
            f"{variable}={name!r} is not a response style; use one of {AUTO_STYLE}, {', '.join(STYLES)}"
        )
    return name
