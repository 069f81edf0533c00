"""A model's files on disk: finding them, checking them, and keeping them inside a root.

``train`` writes ``model.txt`` (LightGBM's text format) and ``metadata.json`` (feature
names, objective, classes, metrics, versions). A model file trained elsewhere is served too
when it is the only model file in the directory: LightGBM text under any name, or a pickle
(:mod:`.formats`). Nothing here imports LightGBM: the serve supervisor checks the model with
these functions before it forks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..confinement import OutsideRoot, resolve_inside
from .formats import LIGHTGBM_TEXT, served_format, unservable

MODEL_FILE = "model.txt"
METADATA_FILE = "metadata.json"
_MODEL_MAGIC = b"tree\nversion=v"


class ModelLoadError(Exception):
    """The model directory holds no usable model; the message says what was found."""


def check_model_text(text: bytes, source: Path) -> None:
    """Refuse a model text that LightGBM would read past its end.

    LightGBM jumps to each tree at the offsets its ``tree_sizes=`` header line declares,
    inside an OpenMP loop, without bounds checks: a truncated or edited file makes it read
    out of bounds or throw inside the loop, which aborts the whole process (SIGSEGV or
    SIGABRT, not an exception). The same offsets are checked here, in Python, first; what
    passes this check LightGBM parses with ordinary, catchable errors.
    """
    if not text.startswith(_MODEL_MAGIC):
        raise ModelLoadError(f"{source} is not a LightGBM text model (it does not start with 'tree' / 'version=v')")
    trees_end = text.find(b"\nend of trees")
    if trees_end < 0:
        raise ModelLoadError(f"{source} is incomplete: it has no 'end of trees' line (truncated or partly copied?)")
    first_tree = text.find(b"\nTree=", 0, trees_end)
    header = text[: first_tree if first_tree >= 0 else trees_end]
    sizes_at = header.find(b"\ntree_sizes=")
    if sizes_at < 0:
        return  # old format: LightGBM reads the trees one after the other, bounds-checked
    sizes_line = header[sizes_at + len(b"\ntree_sizes=") :].split(b"\n", 1)[0]
    try:
        sizes = [int(size) for size in sizes_line.split()]
    except ValueError:
        raise ModelLoadError(f"{source} has a malformed tree_sizes line") from None
    start = first_tree + 1 if first_tree >= 0 else trees_end + 1
    offset = start
    for index, size in enumerate(sizes):
        if size <= 0 or not text.startswith(b"Tree=", offset) or offset + size > trees_end + 1:
            raise ModelLoadError(
                f"{source} is damaged: tree {index} is not where its header (tree_sizes) says it is "
                "(truncated or edited by hand?)"
            )
        offset += size
    if offset != trees_end + 1:
        raise ModelLoadError(
            f"{source} is damaged: its header declares {len(sizes)} trees over {offset - start} bytes "
            f"but the trees take {trees_end + 1 - start} bytes"
        )


def read_objective(path: Path) -> str:
    """The objective a LightGBM model file names in its header (first lines; trees not parsed)."""
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("Tree=") or line == "end of trees":
                break
            if line.startswith("objective="):
                return line.partition("=")[2].split(" ")[0] or "regression"
    return "regression"


def is_lightgbm_model_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(_MODEL_MAGIC)) == _MODEL_MAGIC
    except OSError:
        return False


def _confine(path: Path, root: Path) -> None:
    """Refuse a file that resolves (through symbolic links) outside ``root``, without looking at
    what an outside link points to (:func:`..confinement.resolve_inside`)."""
    try:
        resolve_inside(root, path)
    except OutsideRoot:
        raise ModelLoadError(
            f"{path.relative_to(path.parent)} points outside the models directory {root}; "
            "every file of a model must be inside it"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"{path.name} cannot be resolved ({exc})") from None


def find_model_file(model_dir: Path, root: Path | None = None) -> tuple[Path, Path | None]:
    """(model file, metadata file or None); raises ModelLoadError saying what the directory holds.

    With ``root`` (multi-model mode), every file considered must resolve inside ``root``:
    a model directory is caller-named, and a symbolic link in it must not make us read
    (or serve) a file from elsewhere on the system.
    """
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist; train first or mount a model there")
    metadata = model_dir / METADATA_FILE
    ours = model_dir / MODEL_FILE
    if ours.is_file() and metadata.is_file():
        if root is not None:
            _confine(ours, root)
            _confine(metadata, root)
        return ours, metadata
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if not any(part.startswith(".") for part in p.relative_to(model_dir).parts) and (p.is_file() or p.is_symlink())
    )
    if root is not None:
        for path in files:
            _confine(path, root)
    files = [p for p in files if p.is_file()]
    candidates = [p for p in files if served_format(p) is not None]
    if len(candidates) == 1:  # e.g. a bare CLI model, a model.joblib, or SageMaker's models/<name>/model/model.txt
        beside = candidates[0].parent / METADATA_FILE
        return candidates[0], beside if beside.is_file() else None
    listing = ", ".join(str(p.relative_to(model_dir)) for p in files[:20]) or "nothing"
    if not candidates:
        known = [what for what in map(unservable, files) if what is not None]
        if known:
            raise ModelLoadError(f"no model this container serves in {model_dir}: {'; '.join(known[:3])}")
        hint = (
            " (a model.tar.gz must be extracted first)"
            if any(p.name.endswith((".tar.gz", ".tgz")) for p in files)
            else ""
        )
        raise ModelLoadError(f"no LightGBM text model or pickle in {model_dir}{hint}; found: {listing}")
    formats = [served_format(p) for p in candidates]
    what = "LightGBM models" if set(formats) == {LIGHTGBM_TEXT} else "model files"
    shown = ", ".join(f"{p.relative_to(model_dir)} ({kind})" for p, kind in zip(candidates[:10], formats, strict=False))
    raise ModelLoadError(
        f"{len(candidates)} {what} in {model_dir} ({shown}); keep one, "
        f"or name a LightGBM text model {MODEL_FILE} next to a {METADATA_FILE}"
    )


def is_lightgbm_text(path: Path) -> bool:
    return served_format(path) == LIGHTGBM_TEXT


def read_metadata(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, not {type(document).__name__}")
    return document


def file_identity(path: Path) -> str:
    """A key for the file at ``path`` as it is now (path, size, mtime), without reading it: the
    same file gets the same key in every worker, a replaced or rewritten one a new key."""
    stat = path.stat()
    return hashlib.sha256(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()).hexdigest()[:32]
