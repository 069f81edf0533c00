"""Model names and URLs from callers, confined to the models directory.

A TargetModel name or a ``POST /models`` url comes from the caller, so it must never reach
outside the models directory, through ``..``, an absolute path or a symbolic link.
Archives are extracted by :mod:`..safe_tar`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..confinement import OutsideRoot, is_within, resolve_inside
from ..errors import BadRequest, ModelNotFound


def _inside(models_dir: Path, candidate: Path, shown: str) -> Path:
    """``candidate`` resolved (links followed), if it is inside ``models_dir``: 404 if absent, else 400."""
    try:
        return resolve_inside(models_dir, candidate)  # a link out is refused before its target is touched
    except OutsideRoot:
        raise BadRequest(
            f"model {shown!r} points outside the models directory {models_dir}; "
            "models must be inside it (SageMaker extracts them there)",
            model=shown,
        ) from None
    except FileNotFoundError:
        raise ModelNotFound(f"model {shown!r} does not exist in {models_dir}", model=shown) from None
    except OSError as exc:
        raise BadRequest(f"model {shown!r} cannot be resolved: {exc}", model=shown) from None


def resolve_model_path(models_dir: Path, name: str) -> Path:
    """``models_dir/name``, refusing anything that could escape ``models_dir``; 404 if absent."""
    if not name or "\x00" in name or name.startswith(("/", "\\")) or len(name) > 1024:
        raise BadRequest(f"invalid model name {name!r}: use a name relative to the models directory", model=name)
    parts = name.replace("\\", "/").split("/")
    if any(part in ("..", ".") for part in parts):
        raise BadRequest(f"invalid model name {name!r}: '..' and '.' are not allowed", model=name)
    return _inside(models_dir, models_dir / name, name)


def resolve_model_url(models_dir: Path, url: str) -> Path:
    """The ``url`` of ``POST /models`` (a path, optionally ``file://``), which must lie inside
    ``models_dir``: the load API must not become a way to read any file on the system."""
    if not url or "\x00" in url or len(url) > 4096:
        raise BadRequest('"url" must be the path of the model directory or archive', url=url[:200])
    path = Path(url.removeprefix("file://"))
    path = path if path.is_absolute() else models_dir / path
    # Refuse a path that is outside even before following links, without looking at it:
    # whether a file exists elsewhere on the system is none of the caller's business.
    lexical = Path(os.path.normpath(path))
    if not any(is_within(lexical, root) for root in (models_dir, models_dir.resolve())):
        raise BadRequest(
            f"model url {url!r} is outside the models directory {models_dir}; models must be inside it "
            "(SageMaker extracts them there)",
            model=url,
        )
    return _inside(models_dir, path, url)
