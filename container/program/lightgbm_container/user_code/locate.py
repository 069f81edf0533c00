"""Which user code, if any, serves a model directory, and why.

In order (the first that applies wins):

1. the model directory holds an MMS model archive manifest (``MAR-INF/MANIFEST.json``, or
   the older top-level ``MANIFEST.json``) naming ``model.handler``: an MMS custom service;
2. ``SAGEMAKER_HANDLER`` names ``module[:function]``: an MMS custom service;
3. ``SAGEMAKER_PROGRAM`` names a script, or ``inference.py`` is there: toolkit script mode;
4. otherwise the built-in LightGBM handler.

Code is looked for in the model's own ``code/`` directory (what the SDK repacks into
``model.tar.gz``), then in the container-wide code directory (``SAGEMAKER_SUBMIT_DIRECTORY``,
resolved by ``serve``). Unlike the toolkit, a named program that is not found is an error,
never a silent fall-back to the defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import UserCodeSetupError
from ..settings import ServingSettings
from .modules import module_file

MANIFESTS = ("MAR-INF/MANIFEST.json", "MANIFEST.json")
DEFAULT_PROGRAM = "inference.py"


@dataclass(frozen=True)
class UserCode:
    kind: Literal["script", "custom_service"]
    code_dir: Path
    program: str  # the module ("inference.py", "service")
    function: str | None = None  # a custom service's entry point ("handle" when the handler names none)
    manifest: dict[str, Any] | None = None
    reason: str = ""

    def describe(self) -> str:
        what = "inference.py script (SageMaker Inference Toolkit)" if self.kind == "script" else "MMS custom service"
        return f"{what} {self.code_dir / self.program}{':' + self.function if self.function else ''} ({self.reason})"


def read_manifest(model_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the model archive's manifest, its file name), if the model directory has one."""
    for name in MANIFESTS:
        path = model_dir / name
        if path.is_file():
            try:
                manifest = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise UserCodeSetupError(f"{path} is not valid JSON: {exc}") from None
            return (manifest if isinstance(manifest, dict) else None), name
    return None, None


def _handler(spec: str) -> tuple[str, str]:
    module, _, function = spec.partition(":")
    return module, function or "handle"


def locate(model_dir: Path, settings: ServingSettings, code_dir: Path | None) -> UserCode | None:
    """``code_dir``: the container-wide code directory ``serve`` resolved (None: there is none)."""
    manifest, manifest_name = read_manifest(model_dir)
    handler_spec = ((manifest or {}).get("model") or {}).get("handler")
    if handler_spec:
        module, function = _handler(handler_spec)
        return UserCode("custom_service", model_dir, module, function, manifest, f"model.handler in {manifest_name}")
    own = model_dir / "code"
    code_dirs = [d for d in (own if own.is_dir() else None, code_dir) if d is not None]
    if settings.custom_service:
        module, function = _handler(settings.custom_service)
        for directory in [*code_dirs, model_dir]:
            if module_file(directory, module):
                return UserCode(
                    "custom_service",
                    directory,
                    module,
                    function,
                    manifest,
                    f"SAGEMAKER_HANDLER={settings.custom_service}",
                )
        raise UserCodeSetupError(
            f"SAGEMAKER_HANDLER={settings.custom_service}: {module}.py is in none of {_shown([*code_dirs, model_dir])}"
        )
    program = settings.program or DEFAULT_PROGRAM
    for directory in code_dirs:
        if module_file(directory, program):
            reason = f"SAGEMAKER_PROGRAM={settings.program}" if settings.program else f"{DEFAULT_PROGRAM} found"
            return UserCode("script", directory, program, manifest=manifest, reason=reason)
    if settings.program:
        raise UserCodeSetupError(
            f"SAGEMAKER_PROGRAM={settings.program} but no such file in {_shown(code_dirs) or 'any code directory'}: "
            f"put it in {own} (the SDK's Model(entry_point=..., source_dir=...) does) or set SAGEMAKER_SUBMIT_DIRECTORY"
        )
    return None


def _shown(directories: list[Path]) -> str:
    return ", ".join(str(d) for d in directories)
