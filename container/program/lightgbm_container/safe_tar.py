"""Safe extraction of tar archives (``model.tar.gz``, ``sourcedir.tar.gz``).

An archive must never write outside its destination (tar-slip). Every member is checked
before anything is written: no absolute paths, no ``..``, no links that point out, no
devices, and a total size limit. Extraction goes to a private directory that is renamed
into place only when complete, so concurrent readers (other workers) never see half an archive.
Used by multi-model mode (model archives) and user code (an ``s3://`` source directory).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from pathlib import Path

from .errors import BadRequest

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


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
