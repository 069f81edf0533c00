"""Compiling a model's trees to native code with lleaves, off the start-up path.

Serving never waits for a compile (unless ``LIGHTGBM_PREDICTOR=lleaves`` asks it to): workers
predict with LightGBM at once, a compile job runs in its own low-priority process, and each
worker switches to the compiled trees between requests once the job reports a checked object.

- :mod:`.status`: the job's state as a small JSON file (the only thing workers and ``serve``
  read about a compile; no heavy imports).
- :mod:`.artifact`: what makes a compiled object valid (model hash, lleaves/LLVM versions,
  CPU), where it is cached, and where ``train`` ships one inside the model directory.
- :mod:`.parity`: the check that compiled predictions equal LightGBM's.
- :mod:`.job`: the compile job itself (cache, shipped artifact, or compile; then the check).
- :mod:`.launch`: starting a job from ``serve`` or a worker, bounded in time and priority.
- :mod:`.switch`: a worker's watcher that swaps its predictor when the job is done.
"""
