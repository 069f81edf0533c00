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
