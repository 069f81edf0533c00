"""What ``serve`` does with user code once, before any worker starts (never in a worker).

1. Find the container-wide code directory: ``SAGEMAKER_SUBMIT_DIRECTORY`` as a directory,
   a ``file://`` path, a local ``.tar.gz``, or an ``s3://…/sourcedir.tar.gz`` (what the SDK
   uploads for ``Model(entry_point=...)`` without ``source_dir``), downloaded with boto3
   and extracted safely; unset, ``/opt/ml/model/code`` when it exists.
2. Install its ``requirements.txt`` with pip, once, with the duration logged; wheels
   vendored in ``code/lib`` install without an index. A failed install stops ``serve``
   with pip's own error in the log: no retry loop (the toolkit's restarts repeat it forever).
   When the image's packages are read-only (a non-root user, a read-only root file system:
   Serverless Inference), pip installs under ``serve``'s run directory instead (``--prefix``,
   so what the image already has still counts as installed), and the workers find it there.
3. In single-model mode, decide the serving mode now (:func:`..locate.locate`) and log it
   and why, so a named program that is missing stops ``serve`` with the reason.

Until all this is done, ``/ping`` answers 503 saying which step runs (``announce``, :mod:`..serving.health`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadRequest, UserCodeSetupError
from ..safe_tar import extract_archive, is_archive
from ..settings import DEFAULT_ML_ROOT, ServingSettings
from .locate import UserCode, locate

log = logging.getLogger("serve")


@dataclass(frozen=True)
class PreparedCode:
    """What :func:`prepare_user_code` put in place."""

    code_dir: Path | None  # the container-wide code directory
    code: UserCode | None  # the user code serving the single model, if any
    installed_packages: Path | None  # where pip installed requirements when the image's packages are read-only


def prepare_user_code(
    settings: ServingSettings, run_dir: Path, announce: Callable[[str], None] = lambda _phase: None
) -> PreparedCode:
    """Fetch, install and locate the user code; ``announce`` tells ``/ping`` what takes long
    (fetching the code, installing its requirements)."""
    code_dir = resolve_code_dir(settings, run_dir, announce)
    installed = None
    if code_dir is not None:
        installed = install_requirements(code_dir, run_dir, announce)
    if settings.multi_model:
        log.info(
            "user code for every model: %s; a model's own code/ directory takes precedence",
            code_dir or "none (no SAGEMAKER_SUBMIT_DIRECTORY)",
        )
        return PreparedCode(code_dir, None, installed)
    code = locate(settings.paths.model, settings, code_dir)
    if code is not None and code.code_dir != code_dir:
        installed = install_requirements(code.code_dir, run_dir, announce) or installed
    log.info(
        "serving mode: %s",
        code.describe() if code else "built-in LightGBM (no SAGEMAKER_PROGRAM, no code/inference.py, no MMS manifest)",
    )
    return PreparedCode(code_dir, code, installed)


def resolve_code_dir(
    settings: ServingSettings, run_dir: Path, announce: Callable[[str], None] = lambda _phase: None
) -> Path | None:
    raw = settings.submit_directory
    default = settings.paths.model / "code"
    if raw is None:
        return default if not settings.multi_model and default.is_dir() else None
    if raw.startswith("s3://"):
        announce(f"the model server is starting: downloading the user code {raw}")
        return _download(raw, run_dir, settings.max_archive_bytes)
    path = Path(raw.removeprefix("file://"))
    if path.is_relative_to(DEFAULT_ML_ROOT) and settings.paths.root != Path(DEFAULT_ML_ROOT):
        path = settings.paths.root / path.relative_to(DEFAULT_ML_ROOT)  # local runs move /opt/ml
    if path.is_dir():
        return path
    if is_archive(path):
        return _extract(path, run_dir, settings.max_archive_bytes)
    raise UserCodeSetupError(f"SAGEMAKER_SUBMIT_DIRECTORY={raw}: {path} is neither a directory nor a .tar.gz archive")


def _download(uri: str, run_dir: Path, max_bytes: int) -> Path:
    import boto3  # noqa: PLC0415 - only serve needs it, and only for s3:// code
    import botocore.exceptions  # noqa: PLC0415 - with boto3

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target = run_dir / "sourcedir.tar.gz"
    started = time.monotonic()
    try:
        boto3.client("s3").download_file(bucket, key, str(target))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise UserCodeSetupError(f"SAGEMAKER_SUBMIT_DIRECTORY={uri}: cannot download it: {exc}") from None
    log.info("downloaded %s (%d bytes) in %.1f s", uri, target.stat().st_size, time.monotonic() - started)
    return _extract(target, run_dir, max_bytes)


def _extract(archive: Path, run_dir: Path, max_bytes: int) -> Path:
    try:
        return extract_archive(archive, run_dir / "code", max_bytes)
    except BadRequest as exc:
        raise UserCodeSetupError(f"the user code archive {archive}: {exc.message}") from None


def install_requirements(
    code_dir: Path, run_dir: Path, announce: Callable[[str], None] = lambda _phase: None
) -> Path | None:
    """Install ``code_dir/requirements.txt``; returns the directory the workers must add to
    their path when the image's packages were read-only (None: installed in place, or nothing to do)."""
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return None
    announce(f"the model server is starting: installing {requirements} with pip")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--no-input",
        "-r",
        str(requirements),
    ]
    lib = code_dir / "lib"
    if lib.is_dir() and any(lib.glob("*.whl")):
        command += ["--no-index", "--find-links", str(lib)]  # vendored wheels: no index needed (or reachable)
    prefix = None
    if not os.access(sysconfig.get_path("purelib"), os.W_OK):
        prefix = run_dir / "python"
        command += ["--prefix", str(prefix)]
        log.info("the image's packages are read-only: installing into %s", prefix)
    log.info("installing %s%s ...", requirements, " from the wheels in lib/" if "--no-index" in command else "")
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, cwd=code_dir, check=False)
    if result.returncode != 0:
        for line in (result.stdout + result.stderr).strip().splitlines()[-60:]:
            log.error("pip: %s", line)
        raise UserCodeSetupError(
            f"pip could not install {requirements} (exit {result.returncode}; its output is above). Fix the file, "
            "or vendor the wheels in code/lib; for long installs raise the endpoint's "
            "container_startup_health_check_timeout"
        )
    log.info("installed %s in %.1f s", requirements, time.monotonic() - started)
    if prefix is None:
        return None
    site = installed_site(prefix)
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))  # as in the workers (PYTHONPATH): what serve imports next sees it
    return site


def installed_site(prefix: Path) -> Path:
    """The site-packages directory pip creates under ``--prefix`` (Debian's and CPython's
    schemes name it differently; pip puts pure-Python and binary packages in one here)."""
    found = sorted(prefix.glob("lib*/python3*/*-packages"))
    if found:
        return found[0]
    return Path(sysconfig.get_path("purelib", "posix_prefix", {"base": str(prefix), "platbase": str(prefix)}))
