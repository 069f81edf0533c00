"""Training on several instances with LightGBM's own data-parallel network, set up from SageMaker's resourceconfig.json.

SageMaker starts the same container on every instance with ``resourceconfig.json`` naming
all hosts (``algo-1``, ... on SageMaker; ``algo-1-xxxxx`` in local mode: never assume a
name) and this one. Every host resolves every name (retried: names can resolve late), then
all meet at a rendezvous on the port after LightGBM's (``local_listen_port``, default 12400,
so 12401), so a host that never answers fails the job within ``LIGHTGBM_NETWORK_TIMEOUT``
seconds with its name instead of a socket error hours later. (Not on LightGBM's own port: a
host that left the rendezvous first would start LightGBM and knock on a port the rendezvous
still held.)
LightGBM then trains with ``tree_learner=data`` (or ``voting``/``feature`` when given):
each host bins and histograms its own rows, and all hosts build the same trees.

Every row is used exactly once: a ``ShardedByS3Key`` channel already holds this host's own
files; a ``FullyReplicated`` one (every host has everything) is cut into contiguous,
equal-as-possible row ranges by host rank (hosts sorted by name). The validation channel is
used whole on every host, so every host reports the same metric. Only the first host writes
the model and prints metric lines; the others exit 0.

``LIGHTGBM_HOST_ADDRESSES`` (``algo-1=10.0.0.5:12400,algo-2=...``) replaces name resolution
and the common port: for tests on one machine and custom networks (settings.py).
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import TrainingError

log = logging.getLogger("train")

DEFAULT_PORT = 12400  # LightGBM's own default local_listen_port
_HELLO = b"lightgbm-container rendezvous\n"


@dataclass(frozen=True)
class Cluster:
    """The hosts of the job, sorted, with the address LightGBM reaches each at."""

    hosts: tuple[str, ...]
    current: str
    addresses: Mapping[str, tuple[str, int]]

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current)

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def leads(self) -> bool:
        """The first host (by name) writes the model and prints the metric lines."""
        return self.rank == 0

    def lightgbm_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """LightGBM's network parameters for this host (``tree_learner`` kept when given; LightGBM's
        own socket ``time_out``, 120 minutes, left alone: the rendezvous already met every host)."""
        return {
            "tree_learner": params.get("tree_learner", "data"),
            "num_machines": self.size,
            "machines": ",".join(f"{ip}:{port}" for ip, port in (self.addresses[h] for h in self.hosts)),
            "local_listen_port": self.addresses[self.current][1],
            "pre_partition": True,  # each host brings its own rows
        }

    def row_range(self, rows: int) -> tuple[int, int]:
        """This host's contiguous share of a channel every host has whole (FullyReplicated)."""
        return rows * self.rank // self.size, rows * (self.rank + 1) // self.size


def cluster(resource_config: Mapping[str, Any], port: int, host_addresses: Mapping[str, tuple[str, int]] | None,
            timeout_seconds: int) -> Cluster | None:  # fmt: skip
    """The job's cluster, or None for one host. Names are resolved (retried until
    ``timeout_seconds``) unless ``host_addresses`` gives every host's address and port."""
    hosts = tuple(sorted(resource_config.get("hosts") or []))
    if len(hosts) < 2:
        return None
    current = resource_config.get("current_host")
    if current not in hosts:
        raise TrainingError(f"resourceconfig.json: current_host {current!r} is not one of the hosts {', '.join(hosts)}")
    if host_addresses:
        missing = [h for h in hosts if h not in host_addresses]
        if missing:
            raise TrainingError(f"LIGHTGBM_HOST_ADDRESSES has no address for {', '.join(missing)} (hosts: {', '.join(hosts)})")
        return Cluster(hosts, current, {h: host_addresses[h] for h in hosts})
    deadline = time.monotonic() + timeout_seconds
    return Cluster(hosts, current, {h: (_resolve(h, deadline, timeout_seconds), port) for h in hosts})


def _resolve(host: str, deadline: float, timeout_seconds: int) -> str:
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TrainingError(f"host {host} did not resolve within {timeout_seconds} s ({exc})") from None
            time.sleep(1.0)


def finish_together(job: Cluster, timeout_seconds: int) -> None:
    """Wait, at the end, until every host is done (the first writes the model after training):
    local mode runs the hosts with ``compose up --abort-on-container-exit``, which stops every
    container as soon as one exits, so a host leaving first could cut the first host's model
    short. A host that does not arrive in time is logged, not an error: its own failure is the job's."""
    try:
        rendezvous(job, timeout_seconds, "finished")
    except TrainingError as exc:
        log.warning("not every host finished together: %s", exc)


def rendezvous(job: Cluster, timeout_seconds: int, what: str = "answered") -> None:
    """Return once every other host has answered on its port; else fail naming those that did not.

    Each host listens on the port after its LightGBM port and connects to every other host's
    until that one answers; listening goes on until every other host has connected too (so
    no host leaves while another still waits for it)."""
    ip, lightgbm_port = job.addresses[job.current]
    port = lightgbm_port + 1
    others = [h for h in job.hosts if h != job.current]
    deadline = time.monotonic() + timeout_seconds
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("", port) if ip not in ("127.0.0.1", "localhost") else (ip, port))
        server.listen(len(others) + 4)
        server.settimeout(0.2)
        reached: set[str] = set()
        heard = 0
        while len(reached) < len(others) or heard < len(others):
            for host in others:
                if host not in reached and _hello(_rendezvous_address(job.addresses[host])):
                    reached.add(host)
            try:
                connection, _ = server.accept()
                with connection:
                    connection.sendall(_HELLO)
                    connection.settimeout(1.0)
                    connection.recv(1)  # the caller closes first: its side, not LightGBM's port, keeps TIME_WAIT
                heard += 1
            except OSError:  # socket.timeout included: nobody this time round
                pass
            if time.monotonic() >= deadline:
                silent = [h for h in others if h not in reached]
                if silent:
                    raise TrainingError(
                        "host(s) " + ", ".join(f"{h} ({job.addresses[h][0]}:{job.addresses[h][1] + 1})" for h in silent)
                        + f" never answered within {timeout_seconds} s (LIGHTGBM_NETWORK_TIMEOUT); "
                        "did their containers start, and is the port open between the instances?"
                    )
                break  # every host was reached; one that has not connected back is already on its way
    log.info("distributed training: host %s is rank %d of %d (%s); all hosts %s",
             job.current, job.rank, job.size, ", ".join(job.hosts), what)  # fmt: skip


def _rendezvous_address(lightgbm_address: tuple[str, int]) -> tuple[str, int]:
    return lightgbm_address[0], lightgbm_address[1] + 1


def _hello(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5) as connection:
            connection.settimeout(0.5)
            return connection.recv(len(_HELLO)) == _HELLO
    except OSError:
        return False
