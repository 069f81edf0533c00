"""Each worker's multi-model counters (summed over the live workers by
:class:`~..serving.worker_board.WorkerBoard` for ``GET /stats``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Counters:
    loads: int = 0
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    unloads: int = 0
    load_seconds: float = 0.0
    local_bytes: int = 0
    local_models: int = 0
    compiles_started: int = 0  # hot models this worker sent to the compile job (hot_compile.py)
    compiled_models: int = 0  # copies this worker predicts with compiled trees
    final_compiled_models: int = 0  # of which on the last object their compile job made (nothing better will come)
