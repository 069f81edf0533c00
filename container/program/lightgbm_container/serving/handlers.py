"""Which handler serves a model directory: the one place that decides between the built-in
LightGBM behaviour and user code (what counts as user code: :mod:`..user_code.locate`).
Single-model (:mod:`.store`) and multi-model (:mod:`..multi_model.store`, which gets this
function from :func:`.store.create_store`) decide alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..builtin.handler import BuiltinOptions, LightGBMHandler
from ..builtin.output_selection import check_default_kinds
from ..builtin.styles import check_style
from ..contract.handler import Handler
from ..model.derived import Derived
from ..settings import Runtime, ServingSettings
from ..user_code.context import Context
from ..user_code.custom_service import CustomServiceHandler
from ..user_code.locate import locate
from ..user_code.modules import import_user_module
from ..user_code.script import ScriptHandler

log = logging.getLogger(__name__)


def builtin_options(settings: ServingSettings, runtime: Runtime, root: Path | None = None) -> BuiltinOptions:
    return BuiltinOptions(
        predict_threads=settings.predict_threads,
        max_values=settings.max_payload_bytes,  # one feature value per byte of the largest body
        compiled_model=runtime.compiled_model,
        compile_status=runtime.compile_status,
        root=root,
        default_accept=settings.default_accept,
        invocations_accept=settings.invocations_accept,
        default_outputs=check_default_kinds(settings.inference_output),
        style=check_style(settings.response_style),
        derived_dir=settings.derived_models_dir,
        allow_pickle=settings.allow_pickle,
        derived=Derived.from_json(runtime.derived_model.read_text()) if runtime.derived_model is not None else None,
    )


def handler_for(
    model_dir: Path, settings: ServingSettings, runtime: Runtime, root: Path | None = None, model_name: str = "model"
) -> Handler:
    """The handler for ``model_dir``: user code when the model or the container brings some, else built-in.

    Raises :class:`~..errors.UserCodeSetupError` when user code is named but cannot run."""
    builtin = LightGBMHandler(builtin_options(settings, runtime, root))
    code = locate(model_dir, settings, runtime.code_dir)
    if code is None:
        return builtin
    # A model's own code in multi-model mode is imported apart from every other model's.
    isolated = settings.multi_model and code.code_dir != runtime.code_dir
    module = import_user_module(code.code_dir, code.program, isolated)
    context = Context(model_name, model_dir, code.manifest)
    if code.kind == "custom_service":
        assert code.function is not None
        return CustomServiceHandler(module, code.function, context, settings.mms_decode_input, settings.default_accept)
    return ScriptHandler(module, builtin, settings.default_accept, context)
