"""The shared accounting behind multi-model's budget and its per-model figures: the registry's
measured sizes (with what a compiled copy adds) and the workers' published usage files."""

import os
import subprocess
import sys

import orjson

from lightgbm_container.multi_model.registry import ModelRegistry
from lightgbm_container.multi_model.usage import UsageFiles


def test_a_compiled_copy_adds_to_a_models_size_until_it_is_reloaded(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.add("a", "/models/a", tmp_path, 300_000, 0.01)
    registry.add("b", "/models/b", tmp_path, 5_000_000, 0.05)
    assert registry.bytes_in_use() == 5_300_000
    registry.note_compiled_bytes("a", 900_000)
    (a,) = [item for item in registry.entries() if item.entry.name == "a"]
    assert (a.entry.size_bytes, a.compiled_bytes, a.bytes) == (300_000, 900_000, 1_200_000)
    assert registry.bytes_in_use() == 6_200_000
    registry.touch("a")  # a hit keeps the compiled size: only the modification time moves
    assert registry.bytes_in_use() == 6_200_000
    registry.add("a", "/models/a", tmp_path, 310_000, 0.01)  # reloaded: no compiled copy of the new version yet
    assert registry.bytes_in_use() == 5_310_000
    assert registry.remove("a") and registry.bytes_in_use() == 5_000_000
    registry.note_compiled_bytes("a", 1)  # a worker switching a copy that was unloaded meanwhile: nothing
    assert registry.names() == ["b"]


def test_usage_sums_live_workers_and_forgets_the_dead(tmp_path):
    files = UsageFiles(tmp_path)
    copy = {"bytes": 300_000, "compiled_bytes": 0, "hits": 7, "load_seconds": 0.004, "loaded_at": 1000.0}
    files.publish({"a": copy, "b": {**copy, "bytes": 5_000_000, "compiled_bytes": 1}})
    live_other = os.getppid()  # this test's own parent: alive, and another process than ours
    (files.directory / f"{live_other}.json").write_bytes(
        orjson.dumps({"a": {**copy, "hits": 3, "load_seconds": 0.009, "loaded_at": 900.0}})
    )
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_file = files.directory / f"{int(dead.stdout)}.json"
    dead_file.write_bytes(orjson.dumps({"a": copy, "c": copy}))

    models = files.read()
    assert set(models) == {"a", "b"}  # the exited worker's copies are not counted
    a = models["a"]
    assert (a.copies, a.bytes, a.hits, a.load_seconds, a.loaded_at) == (2, 600_000, 10, 0.009, 900.0)
    assert (models["b"].copies, models["b"].compiled_copies) == (1, 1)
    files.publish({})  # this worker's next publication removes the dead worker's file
    assert not dead_file.exists() and (files.directory / f"{os.getpid()}.json").exists()
    assert set(files.read()) == {"a"}


def test_the_sorted_names_follow_every_change_however_quick(tmp_path):
    """GET /models pages through a listing kept between requests: it must never miss a change,
    even two within one tick of the directory's modification time."""
    import time

    registry = ModelRegistry(tmp_path)
    for name in ("b", "a"):
        registry.add(name, f"/models/{name}", tmp_path, 1000, 0.01)
        assert registry.names() == sorted(registry.names()) and name in registry.names()
    time.sleep(0.2)  # old enough to be trusted: served from the listing kept
    assert registry.names() is registry.names() and registry.names() == ["a", "b"]
    registry.remove("a")
    assert registry.names() == ["b"]
    registry.add("c", "/models/c", tmp_path, 1000, 0.01)
    registry.remove("b")
    assert registry.names() == ["c"]
    assert registry.registered("c").entry.url == "/models/c" and registry.registered("b") is None
