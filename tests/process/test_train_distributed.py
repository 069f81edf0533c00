"""The real `train` on two "instances": two processes on loopback, as SageMaker starts one per host.

Each process gets its own /opt/ml root and a resourceconfig.json naming both hosts (local
mode's kind of names, not algo-1/algo-2), and reaches the other through
LIGHTGBM_HOST_ADDRESSES (both on 127.0.0.1, each on its own port). Both data distributions:
FullyReplicated (each host has every row and trains on its half) and ShardedByS3Key (each
has its own file). Only the first host writes the model; the validation metric matches one
instance's within the tolerance stated below.
"""

import json
import socket
import subprocess

import pytest

from support import BUILTIN_HYPERPARAMETERS, PROGRAM, builtin_job_root, free_port, make_root, program_env, run_train

HOSTS = ("algo-1-x7k2p", "algo-2-q9w3e")
ROUNDS = "40"
#: Two hosts bin from their own samples (LightGBM agrees the bins over the network), so the
#: model is close to one instance's, not identical: the validation l2 may differ this much.
L2_TOLERANCE = 0.05


def _host_root(tmp_path, host: str, distribution: str, hyperparameters: dict):
    root = make_root(tmp_path / host, {"num_boost_round": ROUNDS, **hyperparameters})
    config = root / "input" / "config"
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": host, "hosts": list(HOSTS), "network_interface_name": "lo"})
    )
    channels = {
        "train": {"TrainingInputMode": "File", "S3DistributionType": distribution},
        "validation": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"},
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    return root


def _train_together(roots: dict, **extra: str) -> dict:
    """Both hosts' `train` at once; {host: CompletedProcess-like (returncode, output)}."""
    addresses = _addresses()
    running = {
        host: subprocess.Popen(
            [str(PROGRAM / "train")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=program_env(
                root,
                LIGHTGBM_HOST_ADDRESSES=addresses,
                LIGHTGBM_COMPILE_AHEAD="false",
                LIGHTGBM_NETWORK_TIMEOUT="60",
                **extra,
            ),
        )
        for host, root in roots.items()
    }
    results = {}
    try:
        for host, process in running.items():
            output, _ = process.communicate(timeout=120)
            results[host] = (process.returncode, output)
    finally:  # a host left waiting for the other must not outlive the test
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def _addresses() -> str:
    """LIGHTGBM_HOST_ADDRESSES for both hosts: LightGBM's port free, and the next one (the rendezvous)."""
    ports = []
    while len(ports) < len(HOSTS):
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        ports.append(port)
    return ",".join(f"{host}=127.0.0.1:{port}" for host, port in zip(HOSTS, ports))


def _l2(root) -> float:
    return json.loads((root / "model" / "metadata.json").read_text())["metrics"]["validation"]["l2"]


@pytest.fixture(scope="module")
def single_l2(tmp_path_factory):
    root = make_root(tmp_path_factory.mktemp("single"), {"num_boost_round": ROUNDS})
    result = run_train(root)
    assert result.returncode == 0, result.stdout + result.stderr
    return _l2(root)


@pytest.mark.parametrize("distribution", ["FullyReplicated", "ShardedByS3Key"])
def test_two_hosts_train_one_model_written_by_the_first(tmp_path, single_l2, distribution):
    # One thread per host: two "instances" share this machine's cores, and OpenMP threads that
    # wait by spinning would take turns with the other host's (40 rounds took 10 s with two each).
    roots = {host: _host_root(tmp_path, host, distribution, {"num_threads": "1"}) for host in HOSTS}
    if distribution == "ShardedByS3Key":  # each host's own files: the rows split by S3 key
        lines = (roots[HOSTS[0]] / "input" / "data" / "train" / "diabetes_train.csv").read_text().splitlines()
        for index, host in enumerate(HOSTS):
            (roots[host] / "input" / "data" / "train" / "diabetes_train.csv").write_text(
                "\n".join(lines[index::2]) + "\n"
            )
    results = _train_together(roots)
    for host, (code, output) in results.items():
        assert code == 0, f"{host}:\n{output}"
    first, second = (results[h][1] for h in HOSTS)
    assert f"host {HOSTS[0]} is rank 0 of 2" in first and f"host {HOSTS[1]} is rank 1 of 2" in second
    if distribution == "FullyReplicated":
        assert "trains on rows 1-176 of 353" in first and "trains on rows 177-353 of 353" in second
    else:
        assert "ShardedByS3Key: this host trains on its own 177 rows" in first
    assert "[1] train-l2=" in first and "[1] " not in second  # metric lines from the first host only
    assert (roots[HOSTS[0]] / "model" / "model.txt").is_file()
    assert not (roots[HOSTS[1]] / "model" / "model.txt").exists() and f"{HOSTS[0]} writes the model" in second
    assert "all hosts finished" in first and "all hosts finished" in second  # they leave together
    metadata = json.loads((roots[HOSTS[0]] / "model" / "metadata.json").read_text())
    assert metadata["hyperparameters"]["tree_learner"] == "data" and "machines" not in metadata["hyperparameters"]
    assert abs(_l2(roots[HOSTS[0]]) - single_l2) <= L2_TOLERANCE * single_l2, (_l2(roots[HOSTS[0]]), single_l2)


def test_a_host_that_never_answers_is_named_within_the_timeout(tmp_path):
    root = _host_root(tmp_path, HOSTS[0], "FullyReplicated", {})
    result = run_train(root, LIGHTGBM_HOST_ADDRESSES=_addresses(), LIGHTGBM_NETWORK_TIMEOUT="3")
    assert result.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert f"host(s) {HOSTS[1]} (127.0.0.1:" in failure and "never answered within 3 s" in failure

    alone = _host_root(tmp_path / "second", HOSTS[1], "FullyReplicated", {})  # a host whose first host never came
    assert run_train(alone, LIGHTGBM_HOST_ADDRESSES=_addresses(), LIGHTGBM_NETWORK_TIMEOUT="3").returncode == 1
    assert f"the first host {HOSTS[0]} (127.0.0.1:" in (alone / "output" / "failure").read_text()


def test_a_built_in_algorithm_job_with_use_dask_trains_across_two_hosts(tmp_path):
    """use_dask=True with the SDK's defaults (tree_learner=serial among them) on two instances:
    LightGBM's own data-parallel training, the built-in's metric lines and model.pkl from the first host."""
    roots = {}
    for host in HOSTS:
        root = builtin_job_root(
            tmp_path / host,
            "binary",
            "subfolders",
            hyperparameters={**BUILTIN_HYPERPARAMETERS, "use_dask": "True", "num_threads": "1"},
        )
        (root / "input" / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": host, "hosts": list(HOSTS), "network_interface_name": "lo"})
        )
        roots[host] = root
    results = _train_together(roots)
    for host, (code, output) in results.items():
        assert code == 0, f"{host}:\n{output}"
    first, second = (results[h][1] for h in HOSTS)
    assert "use_dask=True" in first and "tree_learner=serial trains on one machine only" in first
    assert "training/train is FullyReplicated: this host (rank 0 of 2) trains on rows 1-360 of 720" in first
    assert "trains on rows 361-720 of 720" in second
    assert "\ttrain's binary_logloss: " in first and "train's binary_logloss" not in second
    assert (roots[HOSTS[0]] / "model" / "model.pkl").is_file() and not (roots[HOSTS[1]] / "model").exists()
    metadata = json.loads((roots[HOSTS[0]] / "model" / "metadata.json").read_text())
    assert metadata["hyperparameters"]["tree_learner"] == "data"
