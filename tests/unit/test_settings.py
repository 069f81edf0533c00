import pytest

from lightgbm_container.settings import SettingsError, available_cores, serving_settings


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
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "500"}, "between 1 and 100"),
        ({"SAGEMAKER_BATCH": "perhaps"}, "SAGEMAKER_BATCH"),
        ({"LIGHTGBM_PREDICTOR": "xgboost"}, "LIGHTGBM_PREDICTOR"),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        serving_settings(env)


def test_batch_settings():
    settings = serving_settings({"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50", "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD"})
    assert settings.batch and settings.max_payload_mb == 50 and settings.batch_strategy == "SINGLE_RECORD"


def test_multi_model_budget_defaults_from_memory_and_workers():
    from lightgbm_container.settings import WORKER_OVERHEAD_MB, memory_limit_bytes

    one = serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}).model_cache_bytes
    two = serving_settings({"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}).model_cache_bytes
    usable_mb = memory_limit_bytes() * 3 // 4 // (1024 * 1024)
    assert one == (usable_mb - WORKER_OVERHEAD_MB) * 1024 * 1024
    assert two < one and 2 * (two + WORKER_OVERHEAD_MB * 1024 * 1024) <= memory_limit_bytes()
    assert serving_settings({"LIGHTGBM_MODEL_CACHE_MB": "64"}).model_cache_bytes == 64 * 1024 * 1024
    assert serving_settings({"LIGHTGBM_STATE_DIR": "/run/x"}).state_dir.as_posix() == "/run/x"


def test_inference_output_default_kinds_are_checked_at_start():
    assert serving_settings({"SAGEMAKER_INFERENCE_OUTPUT": "Predicted_Label, probabilities"}).inference_output == (
        "predicted_label", "probabilities",
    )
    assert serving_settings({}).inference_output == ()
    with pytest.raises(SettingsError, match="unknown output kind 'probabilites' \\(did you mean 'probabilities'\\?\\)"):
        serving_settings({"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probabilites"})


def test_host_addresses_and_network_timeout_for_training_on_several_instances():
    from lightgbm_container.settings import host_addresses, network_timeout_seconds

    assert host_addresses({}) is None and network_timeout_seconds({}) == 300
    both = {"LIGHTGBM_HOST_ADDRESSES": "algo-1=10.0.0.5:12400, algo-2=10.0.0.6:12402"}
    assert host_addresses(both) == {"algo-1": ("10.0.0.5", 12400), "algo-2": ("10.0.0.6", 12402)}
    with pytest.raises(SettingsError, match="'algo-1=10.0.0.5' is not host=address:port"):
        host_addresses({"LIGHTGBM_HOST_ADDRESSES": "algo-1=10.0.0.5"})


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
    assert dict(cluster(config, 12400, None, 1).addresses) == {"algo-2": ("127.0.0.1", 12400), "localhost": ("127.0.0.1", 12400)}
    config["network_interface_name"] = "ethwe"  # SDK v3's local mode names an interface containers lack
    with pytest.raises(TrainingError, match="host algo-2 did not resolve within 1 s"):
        cluster(config, 12400, None, 1)
