"""Importing user code: the container's own code as the toolkit does, each model's code apart.

Container-wide code (``SAGEMAKER_SUBMIT_DIRECTORY``, ``/opt/ml/model/code``) is imported
under its own name with its directory (and ``lib/``, where the SDK puts ``dependencies``)
at the front of ``sys.path``, exactly as the toolkit's ``PYTHONPATH`` does, so pickles and
lazy imports work unchanged. In multi-model mode each model may bring its own
``code/inference.py``: those are imported under a name unique to their directory, and the
helper modules they import are taken out of ``sys.modules`` again, so two models whose
files have the same names never see each other's. (Such per-model code imports its helpers
at module level; an ``import`` inside a function at request time would not find them.)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
import threading
from pathlib import Path
from types import ModuleType

from ..errors import UserCodeSetupError

log = logging.getLogger("user_code")

_lock = threading.Lock()
_isolated: dict[Path, ModuleType] = {}


def module_name(program: str) -> str:
    """``"inference.py"`` -> ``"inference"`` (the toolkit strips ``.py``; MMS also a ``dir/``)."""
    name = program.strip().rsplit("/", 1)[-1]
    return name[:-3] if name.endswith(".py") else name


def module_file(code_dir: Path, program: str) -> Path | None:
    """The file ``program`` names in ``code_dir`` (a module or a package), if it is there."""
    name = module_name(program)
    for candidate in (code_dir / f"{name}.py", code_dir / name / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_user_module(code_dir: Path, program: str, isolated: bool) -> ModuleType:
    """Import ``program`` from ``code_dir``; a failure is a :class:`UserCodeSetupError` with its cause."""
    path = module_file(code_dir, program)
    if path is None:
        present = (
            ", ".join(sorted(p.name for p in code_dir.iterdir())[:20])
            if code_dir.is_dir()
            else "nothing (no such directory)"
        )
        raise UserCodeSetupError(f"{module_name(program)}.py is not in {code_dir}; it holds {present or 'nothing'}")
    try:
        with _lock:
            return _import_isolated(code_dir, path) if isolated else _import_plain(code_dir, module_name(program))
    except UserCodeSetupError:
        raise
    except Exception as exc:
        log.exception("importing %s failed", path)
        raise UserCodeSetupError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc


def _import_plain(code_dir: Path, name: str) -> ModuleType:
    for entry in (code_dir / "lib", code_dir):
        if entry.is_dir() and str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    return importlib.import_module(name)


def _import_isolated(code_dir: Path, path: Path) -> ModuleType:
    cached = _isolated.get(path)
    if cached is not None:
        return cached
    unique = f"_model_code_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    root = code_dir.resolve()
    before = set(sys.modules)
    sys.path.insert(0, str(code_dir))
    try:
        spec = importlib.util.spec_from_file_location(unique, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(unique, None)
        raise
    finally:
        sys.path.remove(str(code_dir))
        for name in set(sys.modules) - before - {unique}:  # this model's helpers stay private to it
            origin = getattr(sys.modules[name], "__file__", None)
            if origin and Path(origin).resolve().is_relative_to(root):
                del sys.modules[name]
    _isolated[path] = module
    return module
