import re
from pathlib import Path

import pytest

from lightgbm_container.builtin.output_selection import check_default_kinds
from lightgbm_container.settings import SettingsError, serving_settings, training_settings
from lightgbm_container.settings.resources import available_cores, cpu_quota, memory_limit_bytes
from lightgbm_container.settings.serving import WORKER_OVERHEAD_MB
from support import PROGRAM


def test_defaults():
    settings = serving_settings({})
    assert settings.port == 8080 and settings.paths.model.as_posix() == "/opt/ml/model"
    assert settings.workers == available_cores()
    assert settings.workers * settings.predict_threads <= available_cores()
    assert settings.max_payload_mb == 6 and settings.timeout_seconds == 60 and not settings.multi_model


def test_sagemaker_and_classic_names():
    assert serving_settings({"MODEL_SERVER_WORKERS": "3"}).workers == 3
    assert serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "MODEL_SERVER_WORKERS": "3"}).workers == 1
    assert serving_settings({"MODEL_SERVER_TIMEOUT": "120"}).timeout_seconds == 120
    settings = serving_settings({"SAGEMAKER_BASE_DIR": "/tmp/x", "SAGEMAKER_BIND_TO_PORT": "9090"})
    assert settings.paths.model.as_posix() == "/tmp/x/model" and settings.port == 9090


def test_threads_share_the_cores():
    cores = available_cores()
    assert serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}).predict_threads == cores
    assert serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": str(cores * 2)}).predict_threads == 1


@pytest.mark.parametrize(
    "env, message",
    [
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http' is not a whole number"),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2000"}, "between 1 and 1024"),  # asynchronous inference's 1 GB at most
        ({"SAGEMAKER_BATCH": "perhaps"}, "SAGEMAKER_BATCH"),
        ({"LIGHTGBM_PREDICTOR": "xgboost"}, "LIGHTGBM_PREDICTOR"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        serving_settings(env)


def test_batch_settings():
    settings = serving_settings(
        {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50", "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD"}
    )
    assert settings.batch and settings.max_payload_mb == 50 and settings.batch_strategy == "SINGLE_RECORD"


def test_multi_model_budget_defaults_from_memory_and_workers():
    one = serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}).model_cache_bytes
    two = serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}).model_cache_bytes
    usable_mb = memory_limit_bytes() * 3 // 4 // (1024 * 1024)
    assert one == (usable_mb - WORKER_OVERHEAD_MB) * 1024 * 1024
    assert two < one and 2 * (two + WORKER_OVERHEAD_MB * 1024 * 1024) <= memory_limit_bytes()
    assert serving_settings({"LIGHTGBM_MODEL_CACHE_MB": "64"}).model_cache_bytes == 64 * 1024 * 1024


def test_inference_output_default_kinds_are_checked_at_start():
    settings = serving_settings({"SAGEMAKER_INFERENCE_OUTPUT": "Predicted_Label, probabilities"})
    assert check_default_kinds(settings.inference_output) == ("predicted_label", "probabilities")
    assert serving_settings({}).inference_output == ()
    with pytest.raises(SettingsError, match="unknown output kind 'probabilites' \\(did you mean 'probabilities'\\?\\)"):
        check_default_kinds(
            serving_settings({"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilites"}).inference_output
        )


def test_host_addresses_and_network_timeout_for_training_on_several_instances():
    default = training_settings({})
    assert default.host_addresses is None and default.network_timeout_seconds == 300
    both = {"LIGHTGBM_HOST_ADDRESSES": "algo-1=10.0.0.5:12400, algo-2=10.0.0.6:12402"}
    assert training_settings(both).host_addresses == {"algo-1": ("10.0.0.5", 12400), "algo-2": ("10.0.0.6", 12402)}
    with pytest.raises(SettingsError, match="'algo-1=10.0.0.5' is not host=address:port"):
        training_settings({"LIGHTGBM_HOST_ADDRESSES": "algo-1=10.0.0.5"})


def test_training_settings_apply_the_log_level_and_compile_ahead():
    settings = training_settings({"LOG_LEVEL": "warning", "LOG_FORMAT": "json", "LIGHTGBM_COMPILE_AHEAD": "false"})
    assert (settings.logs.level, settings.logs.format, settings.compile_ahead_seconds) == ("WARNING", "json", 0)
    assert training_settings({"LIGHTGBM_COMPILE_TIMEOUT": "90"}).compile_ahead_seconds == 90
    with pytest.raises(SettingsError, match="LOG_LEVEL='loud'"):
        training_settings({"LOG_LEVEL": "loud"})


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize(
    "files, quota",
    [
        ({"cpu.max": "max 100000"}, None),
        ({"cpu.max": "50000 100000"}, 0.5),
        ({"cpu.max": "250000 100000"}, 2.5),
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ({"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000"}, 1.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "50000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 0.5),
        ({}, None),
    ],
)
def test_cpu_quota_from_cgroup_v2_and_v1(tmp_path, files, quota):
    root = _cgroup(tmp_path, files)
    assert cpu_quota(root) == quota
    affinity = len(__import__("os").sched_getaffinity(0))
    expected = affinity if quota is None else min(affinity, max(1, int(quota)))  # 0.5 CPU -> 1 core, 2.5 -> 2
    assert available_cores(root) == expected


@pytest.mark.parametrize(
    "files, limit",
    [({"memory.max": "1073741824"}, 1 << 30), ({"memory/memory.limit_in_bytes": "536870912"}, 1 << 29)],
)
def test_memory_limit_from_cgroup_v2_and_v1(tmp_path, files, limit):
    assert memory_limit_bytes(_cgroup(tmp_path, files)) == limit
    unlimited = {"memory.max": "max"} if "memory.max" in files else {"memory/memory.limit_in_bytes": str(2**63 - 4096)}
    machine = __import__("os").sysconf("SC_PAGE_SIZE") * __import__("os").sysconf("SC_PHYS_PAGES")
    assert memory_limit_bytes(_cgroup(tmp_path / "none", unlimited)) == machine


def test_nothing_outside_the_settings_package_reads_the_environment():
    """The SageMaker contract's variables are read in one place (ruff's banned-api rule says the same)."""
    package = PROGRAM / "lightgbm_container"
    readers = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        if "settings" not in path.relative_to(package).parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\bos\.(environ|getenv|putenv)\b|\bgetenv\(", line)
    ]
    assert readers == []


def test_every_row_of_a_replicated_channel_goes_to_exactly_one_host():
    from lightgbm_container.training.distributed import Cluster

    for size in (2, 3, 5):
        hosts = tuple(f"algo-{i}" for i in range(1, size + 1))
        for rows in (0, 1, 7, 353, 1000):
            ranges = [Cluster(hosts, host, {}).row_range(rows) for host in hosts]
            assert [i for start, stop in ranges for i in range(start, stop)] == list(range(rows))


def test_this_hosts_address_is_the_one_on_network_interface_name():
    from lightgbm_container.errors import TrainingError
    from lightgbm_container.training.distributed import cluster, interface_address

    assert interface_address("lo") == "127.0.0.1" and interface_address("ethwe") is None
    config = {"hosts": ["algo-2", "localhost"], "current_host": "algo-2", "network_interface_name": "lo"}
    # algo-2 resolves nowhere: its address comes from the interface; the other host's from its name.
    assert dict(cluster(config, 12400, None, 1).addresses) == {
        "algo-2": ("127.0.0.1", 12400),
        "localhost": ("127.0.0.1", 12400),
    }
    config["network_interface_name"] = "ethwe"  # SDK v3's local mode names an interface containers lack
    with pytest.raises(TrainingError, match="host algo-2 did not resolve within 1 s"):
        cluster(config, 12400, None, 1)


# ----------------------------------------------- workers, threads and memory from a fabricated cgroup tree


@pytest.mark.parametrize(
    "files, cores",
    [
        ({"cpu.max": "50000 100000"}, 1),  # v2, half a CPU (an inference component's allotment)
        ({"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}, 1),  # v1, half a CPU
        ({"cpu.max": "150000 100000"}, 1),  # 1.5 CPU: one whole core
    ],
)
def test_a_fractional_allotment_gives_one_worker_and_one_thread(tmp_path, files, cores):
    root = _cgroup(tmp_path, {**files, "memory.max": str(1 << 30)})
    settings = serving_settings({}, cgroup_root=root)
    assert (settings.workers, settings.predict_threads) == (cores, 1)
    assert settings.predict_threads_from == "1 core(s) / 1 worker(s)"
    # A 1 GB limit: a compile may take a quarter; the models what is left after one worker's overhead.
    assert settings.compile_memory_mb == 256
    assert settings.model_cache_bytes == (768 - WORKER_OVERHEAD_MB) * 1024 * 1024


def test_how_workers_omp_num_threads_and_our_threads_resolve(tmp_path):
    """Ours first, then the user's OMP_NUM_THREADS (Inference Recommender sweeps it), then the cores' share."""
    two_cpus = _cgroup(tmp_path, {"cpu.max": "200000 100000"})
    cores = min(2, len(__import__("os").sched_getaffinity(0)))

    def resolved(**env: str) -> tuple[int, int, str]:
        settings = serving_settings(env, cgroup_root=two_cpus)
        return settings.workers, settings.predict_threads, settings.predict_threads_from

    assert resolved() == (cores, 1, f"{cores} core(s) / {cores} worker(s)")
    assert resolved(SAGEMAKER_MODEL_SERVER_WORKERS="1") == (1, cores, f"{cores} core(s) / 1 worker(s)")
    assert resolved(OMP_NUM_THREADS="4") == (cores, 4, "OMP_NUM_THREADS")  # honoured, even oversubscribed (a warning)
    assert resolved(OMP_NUM_THREADS="3,1", SAGEMAKER_MODEL_SERVER_WORKERS="1")[1] == 3  # nested: its first level
    assert resolved(OMP_NUM_THREADS="4", LIGHTGBM_PREDICT_THREADS="1")[1:] == (1, "LIGHTGBM_PREDICT_THREADS")
    with pytest.raises(SettingsError, match="OMP_NUM_THREADS='many'"):
        resolved(OMP_NUM_THREADS="many")
    with pytest.raises(SettingsError, match="LIGHTGBM_PREDICT_THREADS=2 with 3 workers"):
        serving_settings(
            {"SAGEMAKER_MODEL_SERVER_WORKERS": "3", "LIGHTGBM_PREDICT_THREADS": "2"},
            cgroup_root=_cgroup(tmp_path / "four", {"cpu.max": "400000 100000"}),
        )


def test_the_omp_num_threads_workers_get_is_the_resolved_one(tmp_path):
    from lightgbm_container.serving.supervisor import worker_environment
    from lightgbm_container.settings import Runtime

    settings = serving_settings({"OMP_NUM_THREADS": "3"})
    assert worker_environment(settings, Runtime())["OMP_NUM_THREADS"] == "3"
    installed = tmp_path / "python" / "lib" / "python3.11" / "site-packages"
    assert worker_environment(settings, Runtime(installed_packages=installed))["PYTHONPATH"].startswith(str(installed))


def test_the_compile_cache_follows_the_writable_temporary_directory(tmp_path):
    import tempfile

    assert serving_settings({}).compile_cache_dir == Path(tempfile.gettempdir()) / "lightgbm-container-cache"
    assert serving_settings({"LIGHTGBM_COMPILE_CACHE": str(tmp_path)}).compile_cache_dir == tmp_path


def test_the_compile_jobs_heap_is_bounded():
    """bound_memory: an allocation past the bound fails in the job (it ends; the workers keep LightGBM)
    instead of taking the container past its memory."""
    import subprocess
    import sys

    script = (
        "from lightgbm_container.compilation.job import bound_memory\n"
        "import numpy\n"
        "bound_memory(64)\n"
        "small = numpy.ones(16 * 2**20 // 8)\n"
        "try:\n"
        "    numpy.ones(256 * 2**20 // 8)\n"
        "except MemoryError:\n"
        "    print('bounded')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=PROGRAM, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "bounded", result.stderr


def test_a_run_directory_nginx_workers_cannot_reach_is_named(tmp_path):
    """serve as root with TMPDIR inside a private directory: nginx's unprivileged workers could not reach it."""
    from lightgbm_container.settings.scratch import unreachable_by_others

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    inner = private / "run"
    inner.mkdir(mode=0o755)
    assert unreachable_by_others(inner) == private
    private.chmod(0o711)
    assert unreachable_by_others(inner) in (None, *private.parents)  # pytest's own base may be private too
    assert unreachable_by_others(Path("/tmp")) is None


def test_multi_model_workers_get_malloc_tuning_unless_the_user_chose_their_own():
    from lightgbm_container.settings.serving import MULTI_MODEL_MALLOC

    assert serving_settings({}).malloc_tuning == {}
    assert serving_settings({"SAGEMAKER_MULTI_MODEL": "true"}).malloc_tuning == MULTI_MODEL_MALLOC
    own = serving_settings({"SAGEMAKER_MULTI_MODEL": "true", "MALLOC_ARENA_MAX": "8"}).malloc_tuning
    assert "MALLOC_ARENA_MAX" not in own and own["MALLOC_MMAP_THRESHOLD_"] == "1048576"
