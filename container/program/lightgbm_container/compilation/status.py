"""A compile job's state, shared through one small JSON file.

The job writes it (atomically: a reader sees the old state or the new one, never half);
``serve``, the workers and ``/stats`` read it. Reading imports nothing heavy, so the
supervisor and the request path can afford it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic_files import write_atomically

COMPILING, READY, FAILED = "compiling", "ready", "failed"


@dataclass(frozen=True)
class CompileStatus:
    state: str  # compiling | ready | failed
    object: str | None = None  # the checked lleaves object (ready)
    source: str | None = None  # cache | shipped | compiled (ready)
    seconds: float | None = None  # how long the job took
    reason: str | None = None  # why it failed, or why a shipped artifact was not used
    final: bool | None = None  # False: a quickly compiled object, a fully optimised one is on its way

    @property
    def finished(self) -> bool:
        return self.state == FAILED or (self.state == READY and self.final is not False)

    def describe(self) -> str:
        if self.state == READY:
            took = f" in {self.seconds:.1f} s" if self.seconds is not None else ""
            stage = ", fully optimised version on its way" if self.final is False else ""
            why = f" ({self.reason})" if self.reason else ""
            return f"ready ({self.source}{took}{stage}): {self.object}{why}"
        if self.state == FAILED:
            return f"failed: {self.reason}"
        return "compiling"


def write_status(path: Path, status: CompileStatus) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(
        path, json.dumps({key: value for key, value in asdict(status).items() if value is not None}).encode()
    )


def read_status(path: Path) -> CompileStatus | None:
    """The job's state, or None when no job was started for ``path``."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # written atomically, so this is a damaged file: say so
        return CompileStatus(FAILED, reason=f"unreadable compile status {path}")
    return CompileStatus(**{key: raw.get(key) for key in ("state", "object", "source", "seconds", "reason", "final")})
