"""Where ``serve`` and ``train`` may write when the root file system is read-only.

SageMaker Serverless Inference (and ``docker run --read-only --tmpfs /tmp --user 12345``) leaves
one writable place: the temporary directory. Everything either program writes outside
``/opt/ml`` goes under it: ``serve``'s run directory (nginx's configuration, pid and temp
files, the gunicorn socket, the settings hand-off, a downloaded user-code archive and the
packages its ``requirements.txt`` installs when the image's own are read-only), the compile
cache, and the workers' metrics files when ``/dev/shm`` is not writable.

The order is Python's own (:func:`tempfile.gettempdir`): ``TMPDIR``, ``TEMP``, ``TMP``, then
``/tmp``, ``/var/tmp``, ``/usr/tmp``, then the working directory; the first where a file can
really be created wins. When none can, the error names every place tried.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .parsing import SettingsError

_NAMED_BY = ("TMPDIR", "TEMP", "TMP")


class NoWritablePlace(SettingsError):
    """Nothing ``serve`` or ``train`` needs to write to is writable."""


def writable_temp_dir() -> Path:
    """The first writable temporary directory, in :mod:`tempfile`'s order (read once, then cached by it)."""
    try:
        return Path(tempfile.gettempdir())
    except FileNotFoundError:
        raise NoWritablePlace(no_writable_place()) from None


def no_writable_place() -> str:
    """What to say when nothing is writable: every place tried, and how to give one."""
    named = [f"{name}={os.environ[name]}" for name in _NAMED_BY if os.environ.get(name)]
    tried = ", ".join([*named, "/tmp", "/var/tmp", "/usr/tmp", os.getcwd()])
    return (
        f"no writable temporary directory (tried {tried}): give the container one, e.g. "
        "`docker run --tmpfs /tmp` (SageMaker Serverless Inference has a writable /tmp), or set TMPDIR "
        "to a writable directory"
    )


def unreachable_by_others(directory: Path) -> Path | None:
    """The first directory on the way to ``directory`` that other users cannot traverse, if any.

    Run as root, nginx's workers drop to an unprivileged user and must reach ``serve``'s run
    directory (its health files, its socket): a ``TMPDIR`` inside a private (0700) directory
    would leave ``/ping`` failing forever, so ``serve`` says so at start instead."""
    for part in [directory, *directory.parents]:
        try:
            if not part.stat().st_mode & 0o001:
                return part
        except OSError:
            return part
    return None
