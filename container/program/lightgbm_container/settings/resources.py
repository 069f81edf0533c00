"""What this container may use: CPUs and memory, from the process' affinity and its cgroup limits.

SageMaker runs the image under limits ``os.cpu_count()`` does not see: an inference
component's CPU allotment (possibly a fraction of a core), a serverless memory size, Docker's
``--cpus`` and ``--memory``. Both cgroup versions are read: v2's ``cpu.max`` and
``memory.max``, v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` and
``memory.limit_in_bytes``. A fractional CPU quota is rounded down to whole cores, never below
one (0.5 CPU: one worker, one prediction thread; 2.5: two), so workers x threads never exceed
what the quota pays for.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: cgroup v1 mounts the CPU controller under one of these names.
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
#: v1 reports "no limit" as a huge number (the page-aligned maximum).
_NO_MEMORY_LIMIT = 1 << 60


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in cores (``1.5``), or None when there is none."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota == "max" or not period:
            return None
        return _ratio(quota, period)
    for directory in _V1_CPU_DIRS:
        quota_text = _read(root / directory / "cpu.cfs_quota_us")
        period_text = _read(root / directory / "cpu.cfs_period_us")
        if quota_text is not None and period_text is not None:
            return None if quota_text.startswith("-") else _ratio(quota_text, period_text)
    return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        value = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def affinity_cores() -> int:
    """CPUs the scheduler lets this process run on (``taskset``, ``docker --cpuset-cpus``)."""
    return len(os.sched_getaffinity(0))


def available_cores(root: Path = CGROUP_ROOT) -> int:
    """Whole cores this process may really use: the affinity mask, capped by the CPU quota rounded down (at least 1)."""
    cores = affinity_cores()
    quota = cpu_quota(root)
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def memory_limit_bytes(root: Path = CGROUP_ROOT) -> int:
    """The container's memory limit (cgroup v2, else v1), else the machine's memory."""
    for path in (root / "memory.max", root / "memory" / "memory.limit_in_bytes"):
        raw = _read(path)
        if raw is not None and raw.isdigit() and int(raw) < _NO_MEMORY_LIMIT:
            return int(raw)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
