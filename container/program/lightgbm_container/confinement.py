"""Paths that must stay inside a root: model files, and model names and URLs from callers.

The two facts every such check needs, in one place: how to follow every link of a path
without stepping outside the root (:func:`resolve_inside`; a link loop is an ``OSError``), and
when a path lies inside a root.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

#: Symbolic links followed in one path before giving up, as Linux does (ELOOP).
MAX_LINKS = 40


class OutsideRoot(OSError):
    """A symbolic link on the way points outside the root; its target was not looked at."""

    def __init__(self, link: Path, target: Path) -> None:
        super().__init__(errno.EACCES, f"{link} points outside, to {target}")
        self.link = link
        self.target = target


def is_within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies below it (compare resolved paths, or normalised ones)."""
    return path == root or root in path.parents


def resolve_inside(root: Path, path: Path) -> Path:
    """``path`` (``root`` or below it, lexically) with every symbolic link followed, without ever
    touching anything outside ``root``: each link's target is computed from the link's text alone,
    and one that lies outside raises :class:`OutsideRoot` before it is opened, read or even
    stat'ed. ``root`` itself is trusted (resolved first: ``/opt/ml/models`` may be a link).
    FileNotFoundError when a part is missing; OSError(ELOOP) after :data:`MAX_LINKS` links."""
    real_root = root.resolve()
    lexical = Path(os.path.normpath(path))
    base = real_root if is_within(lexical, real_root) else root
    if not is_within(lexical, base):
        raise OutsideRoot(path, lexical)
    pending = list(lexical.relative_to(base).parts)
    current = real_root
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            current = current.parent
            if not is_within(current, real_root):
                raise OutsideRoot(path, current)
            continue
        candidate = current / part
        if not candidate.is_symlink():  # lstat of a path inside the root (current holds no link)
            if not os.path.lexists(candidate):
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(candidate))
            current = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", str(path))
        target = Path(os.path.normpath(current / os.readlink(candidate)))
        if not is_within(target, real_root):
            raise OutsideRoot(candidate, target)
        pending = list(target.relative_to(real_root).parts) + pending
        current = real_root
    return current


def first_link_outside(directory: Path, root: Path) -> OutsideRoot | None:
    """The first symbolic link anywhere under ``directory`` (itself resolved inside ``root``) whose
    target lies outside ``root``, found without following any link out. A link to a directory
    inside the root is walked too (once). After this, every path below ``directory`` resolves
    inside ``root``."""
    pending, walked = [directory], set()
    while pending:
        top = pending.pop()
        if top in walked:
            continue
        walked.add(top)
        for current, subdirectories, files in os.walk(top, followlinks=False):
            for name in [*subdirectories, *files]:
                entry = Path(current) / name
                if not entry.is_symlink():
                    continue
                try:
                    target = resolve_inside(root, entry)
                except OutsideRoot as outside:
                    return outside
                except OSError:
                    continue  # a dangling link or a loop inside the root: nothing outside is reached
                if target.is_dir():
                    pending.append(target)
    return None
