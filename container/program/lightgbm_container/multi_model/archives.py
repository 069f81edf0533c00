"""Safe extraction of model archives (``model.tar.gz``) and safe resolution of model names.

A TargetModel name comes from the caller, so it must never reach outside the models
directory, and an archive must never write outside its destination (tar-slip). Every member
is checked before anything is written: no absolute paths, no ``..``, no links that point
out, no devices, and a total size limit. Extraction goes to a private directory that is
renamed into place only when complete, so workers never see half an archive.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from ..errors import BadRequest, ModelNotFound

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _inside(models_dir: Path, candidate: Path, shown: str) -> Path:
    """``candidate`` resolved (links followed), if it is inside ``models_dir``: 404 if absent, else 400."""
    root = models_dir.resolve()
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise ModelNotFound(f"model {shown!r} does not exist in {models_dir}", model=shown) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop (Python 3.11)
        raise BadRequest(f"model {shown!r} cannot be resolved: {exc}", model=shown) from None
    if resolved != root and root not in resolved.parents:
        raise BadRequest(
            f"model {shown!r} points outside the models directory {models_dir}; "
            "models must be inside it (SageMaker extracts them there)",
            model=shown,
        )
    return resolved


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
    if not any(lexical == root or root in lexical.parents for root in (models_dir, models_dir.resolve())):
        raise BadRequest(
            f"model url {url!r} is outside the models directory {models_dir}; models must be inside it "
            "(SageMaker extracts them there)",
            model=url,
        )
    return _inside(models_dir, path, url)


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    normalized = posixpath.normpath(name)
    if name.startswith("/") or normalized.startswith("..") or "\x00" in name:
        raise BadRequest(f"archive {archive.name} has an unsafe path {name!r}")
    if member.issym() or member.islnk():
        target = member.linkname
        base = posixpath.dirname(normalized) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved.startswith(".."):
            raise BadRequest(f"archive {archive.name} has a link {name!r} pointing outside it ({target!r})")
    elif not (member.isfile() or member.isdir()):
        raise BadRequest(f"archive {archive.name} has a special file {name!r}; only files and folders are allowed")


def extract_archive(archive: Path, destination: Path, max_bytes: int) -> Path:
    """Extract ``archive`` to ``destination`` (atomically; reused if already there)."""
    if destination.is_dir():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                _check_member(member, archive)
                total += max(member.size, 0)
                if total > max_bytes:
                    raise BadRequest(
                        f"archive {archive.name} expands to more than {max_bytes // (1024 * 1024)} MB "
                        "(LIGHTGBM_MAX_ARCHIVE_MB)"
                    )
            scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=destination.parent))
            try:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(scratch, members=members, filter="data")
                else:  # every member was checked above
                    tar.extractall(scratch, members=members)
                os.replace(scratch, destination)
            except OSError:
                if destination.is_dir():  # another worker finished first
                    shutil.rmtree(scratch, ignore_errors=True)
                    return destination
                raise
            finally:
                if scratch.exists():
                    shutil.rmtree(scratch, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BadRequest(f"archive {archive.name} cannot be read: {exc}") from None
    return destination
