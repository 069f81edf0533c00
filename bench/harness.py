"""The frame every benchmark's ``main`` shares, written once.

The tools (nginx, wrk) and the cleanup on signals are set up. A scratch directory is made, and
the report the benchmark renders in it is printed and written to its output file. A server
that answers wrongly or never gets ready (:class:`measure.BenchmarkError`,
:class:`processes.ServerNotReady`) ends the run with exit code 1 and the reason. Whatever
happens, every server the run started is stopped and the scratch directory is removed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import measure
import processes
import servers


def run(prefix: str, output: Path, measured_report: Callable[[Path], str]) -> int:
    """``measured_report(scratch directory)`` -> the report's text; returns the exit code."""
    processes.install_cleanup()
    servers.ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        text = measured_report(tmp)
        print("\n" + text, flush=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        return 0
    except (measure.BenchmarkError, processes.ServerNotReady) as error:
        print(f"[bench] FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        processes.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
