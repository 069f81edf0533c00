"""Training on several instances with LightGBM's own data-parallel network, set up from SageMaker's resourceconfig.json.

SageMaker starts the same container on every instance with ``resourceconfig.json`` naming
all hosts (``algo-1``, ... on SageMaker; ``algo-1-xxxxx`` in local mode: never assume a
name), this one, and the network interface they share (``network_interface_name``: this
host's own address is the one on it). Every host resolves every other name (retried: names
can resolve late), then all meet at a rendezvous with the first host on the port after
LightGBM's (``local_listen_port``, default 12400, so 12401), so a host that never answers
fails the job within ``LIGHTGBM_NETWORK_TIMEOUT`` seconds with its name instead of a socket
error hours later. (Not on LightGBM's own port: LightGBM, started on a host that left the
rendezvous, would knock on a port the rendezvous still held.)
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TrainingError

log = logging.getLogger("train")

DEFAULT_PORT = 12400  # LightGBM's own default local_listen_port


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
        """LightGBM's network parameters for this host (a parallel ``tree_learner`` kept when given;
        LightGBM's own socket ``time_out``, 120 minutes, left alone: the rendezvous already met
        every host). ``serial`` (the built-in algorithm's default, which its SDK always sends)
        would make LightGBM train each host alone on its share: it becomes ``data``, as
        LightGBM's own Dask training does."""
        learner = str(params.get("tree_learner", "data"))
        if learner not in PARALLEL_LEARNERS:
            log.info(
                "tree_learner=%s trains on one machine only: %d hosts train with tree_learner=data", learner, self.size
            )
            learner = "data"
        return {
            "tree_learner": learner,
            "num_machines": self.size,
            "machines": ",".join(f"{ip}:{port}" for ip, port in (self.addresses[h] for h in self.hosts)),
            "local_listen_port": self.addresses[self.current][1],
            "pre_partition": True,  # each host brings its own rows
        }

    def row_range(self, rows: int) -> tuple[int, int]:
        """This host's contiguous share of a channel every host has whole (FullyReplicated)."""
        return rows * self.rank // self.size, rows * (self.rank + 1) // self.size


#: LightGBM's tree learners that train across machines (and their aliases).
PARALLEL_LEARNERS = ("data", "data_parallel", "feature", "feature_parallel", "voting", "voting_parallel")


def cluster(
    resource_config: Mapping[str, Any],
    port: int,
    host_addresses: Mapping[str, tuple[str, int]] | None,
    timeout_seconds: int,
) -> Cluster | None:
    """The job's cluster, or None for one host. Names are resolved (retried until
    ``timeout_seconds``) unless ``host_addresses`` gives every host's address and port."""
    hosts = tuple(sorted(resource_config.get("hosts") or []))
    if len(hosts) < 2:
        return None
    current = str(resource_config.get("current_host"))
    if current not in hosts:
        raise TrainingError(f"resourceconfig.json: current_host {current!r} is not one of the hosts {', '.join(hosts)}")
    if host_addresses:
        missing = [h for h in hosts if h not in host_addresses]
        if missing:
            raise TrainingError(
                f"LIGHTGBM_HOST_ADDRESSES has no address for {', '.join(missing)} (hosts: {', '.join(hosts)})"
            )
        return Cluster(hosts, current, {h: host_addresses[h] for h in hosts})
    deadline = time.monotonic() + timeout_seconds
    own = _own_address(resource_config.get("network_interface_name"), current)
    return Cluster(
        hosts,
        current,
        {h: (own if h == current and own else _resolve(h, deadline, timeout_seconds), port) for h in hosts},
    )


def interface_address(interface: str) -> str | None:
    """The IPv4 address of the network interface named so, or None where it has none."""
    import psutil  # noqa: PLC0415 - psutil only on several instances

    for address in psutil.net_if_addrs().get(interface, []):
        if address.family == socket.AF_INET:
            return address.address
    return None


def _own_address(interface: str | None, current: str) -> str | None:
    """This host's address on SageMaker's ``network_interface_name`` (the one the instances
    share; LightGBM finds its own rank by looking for one of its addresses in ``machines``),
    or None to resolve its name like the others'. Local mode names interfaces that may not
    exist (SDK v3 writes "ethwe"): then the name is resolved, and the log says so."""
    if not interface:
        return None
    address = interface_address(interface)
    if address is None:
        log.info("network_interface_name %s has no IPv4 address here; host %s is found by its name", interface, current)
    else:
        log.info("host %s is %s on %s (network_interface_name)", current, address, interface)
    return address


def _resolve(host: str, deadline: float, timeout_seconds: int) -> str:
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TrainingError(
                    f"host {host} did not resolve within {timeout_seconds} s ({exc}); on SageMaker every host of "
                    "the job resolves; elsewhere (a copied resourceconfig.json) make the names in its hosts "
                    "resolvable, e.g. in /etc/hosts (LIGHTGBM_NETWORK_TIMEOUT bounds this wait)"
                ) from None
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def resolve_hosts(hosts: Sequence[str], timeout_seconds: int) -> dict[str, str]:
    """Every host's address, each retried until ``timeout_seconds`` from now have passed
    (names can resolve late as a cluster boots); a name that never does fails the job naming it."""
    deadline = time.monotonic() + timeout_seconds
    return {host: _resolve(host, deadline, timeout_seconds) for host in hosts}


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
    """Return once every host has arrived; else fail naming the hosts that did not.

    A star, on the port after each host's LightGBM port: every other host connects to the
    first one (retrying until it listens) and says its name, keeping the connection open; the
    first host answers "go" to all once all have come, or "stop" and fails naming the missing
    ones when the time is up. Nobody leaves while another still counts on it: an open
    connection is a host that is there, whatever the timing of retries."""
    deadline = time.monotonic() + timeout_seconds
    if job.leads:
        _gather(job, deadline, timeout_seconds)
    else:
        _join(job, deadline, timeout_seconds)
    log.info(
        "distributed training: host %s is rank %d of %d (%s); all hosts %s",
        job.current,
        job.rank,
        job.size,
        ", ".join(job.hosts),
        what,
    )


def _rendezvous_address(job: Cluster, host: str) -> tuple[str, int]:
    ip, lightgbm_port = job.addresses[host]
    return ip, lightgbm_port + 1


def _gather(job: Cluster, deadline: float, timeout_seconds: int) -> None:
    ip, port = _rendezvous_address(job, job.current)
    waiting = {h for h in job.hosts if h != job.current}
    arrived: list[socket.socket] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((ip, port) if ip.startswith("127.") else ("", port))
        server.listen(len(waiting) + 4)
        server.settimeout(0.2)
        try:
            while waiting:
                if time.monotonic() >= deadline:
                    _tell(arrived, b"stop\n")
                    raise TrainingError(
                        "host(s) "
                        + ", ".join(f"{h} ({':'.join(map(str, _rendezvous_address(job, h)))})" for h in sorted(waiting))
                        + f" never answered within {timeout_seconds} s (LIGHTGBM_NETWORK_TIMEOUT); "
                        "did their containers start, and is the port open between the instances?"
                    )
                try:
                    connection, _ = server.accept()
                except OSError:  # socket.timeout included: nobody this time round
                    continue
                connection.settimeout(5.0)
                name = _line(connection)
                if name in waiting:
                    waiting.discard(name)
                    arrived.append(connection)
                else:
                    connection.close()
            _tell(arrived, b"go\n")
        finally:
            for connection in arrived:
                connection.close()


def _join(job: Cluster, deadline: float, timeout_seconds: int) -> None:
    first = job.hosts[0]
    address = _rendezvous_address(job, first)
    while True:
        try:
            connection = socket.create_connection(address, timeout=2.0)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise TrainingError(
                    f"the first host {first} ({address[0]}:{address[1]}) never answered within {timeout_seconds} s "
                    "(LIGHTGBM_NETWORK_TIMEOUT); did its container start, and is the port open between the instances?"
                ) from None
            time.sleep(0.2)
    with connection:
        connection.sendall(job.current.encode() + b"\n")
        connection.settimeout(max(deadline - time.monotonic(), 0.0) + 10.0)  # the first host decides in time
        reply = _line(connection)
    if reply != "go":
        raise TrainingError(f"the first host {first} gave up waiting for the other hosts (see its log)")


def _line(connection: socket.socket) -> str:
    """One short line from a peer ("" if it closed or said nothing in time)."""
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 512:
            chunk = connection.recv(512)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.decode(errors="replace").strip()


def _tell(connections: list[socket.socket], message: bytes) -> None:
    for connection in connections:
        try:
            connection.sendall(message)
        except OSError:
            pass
