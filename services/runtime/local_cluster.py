"""`runbus run all --ensure-cluster`: a local six-node Redis Cluster for you (what
``make run-cluster`` starts).

Three masters and three replicas on loopback, on six consecutive ports from the port of
``RUNBUS_REDIS_URL`` (``make run-cluster``: 7000-7005), each node's files (AOF, ``nodes.conf``)
under ``var/cluster/<port>``. Nodes that already answer are reused; missing ones are started
from their own files, so a stopped cluster comes back as it was; ``redis-cli --cluster create
... --cluster-replicas 1`` runs only when no node belongs to a cluster yet. The nodes this
process started are stopped after the services (they acknowledge into it while draining).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.runtime.logic import is_loopback_redis, redis_port
from services.runtime.supervisor import dies_with_this_process
from shared.connections import redact
from shared.logging import get_logger

log = get_logger("runbus.runtime")

NODES = 6
#: Each node also listens on its port + this (the cluster bus), which must be a valid port.
BUS_OFFSET = 10000
MAX_PORT = 65535 - BUS_OFFSET
#: A failed master's replica takes over after this long (Redis's default is 15 s).
NODE_TIMEOUT_MS = 5000
HOW_TO_GET_A_CLUSTER = (
    "cannot start a local Redis Cluster at {url}: {why}. Install redis-server and redis-cli "
    "(apt-get install redis-server, brew install redis), or point RUNBUS_REDIS_URL at a node "
    "of your cluster and drop --ensure-cluster"
)


class ClusterUnavailable(RuntimeError):
    """No local cluster answers and none can be started here; the message says what to do."""


@dataclass
class LocalCluster:
    """The six nodes' ports, and the redis-servers of them this process started."""

    ports: tuple[int, ...]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every node started here (each fsyncs its AOF), SIGKILL after the timeout."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self.procs:
            log.info("local_cluster_stopped", ports=list(self.ports))
        self.procs = []


def port_free(port: int) -> bool:
    """True when nothing listens on loopback `port` (it can be bound now)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def node_ports_free(first: int, count: int = NODES) -> bool:
    """True when `count` nodes could listen from `first` on: their ports and their bus ports."""
    ports = range(first, first + count)
    return first + count - 1 <= MAX_PORT and all(
        port_free(p) and port_free(p + BUS_OFFSET) for p in ports
    )


def cluster_ports(url: str) -> tuple[int, ...]:
    """The six nodes' ports: the URL's port and the five after it."""
    first = redis_port(url)
    if first + NODES - 1 > MAX_PORT:
        raise ClusterUnavailable(f"cluster ports must be at most {MAX_PORT}, not {first}")
    return tuple(range(first, first + NODES))


def node_command(binary: str, port: int, workdir: Path) -> list[str]:
    """One node's command line: loopback only, cluster mode, AOF on, files under `workdir`."""
    return [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--appendonly", "yes",
        "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes",
        "--daemonize", "no", "--logfile", "redis.log",
    ]  # fmt: skip


def cluster_info(port: int, timeout: float = 0.5) -> dict[str, str] | None:
    """CLUSTER INFO of the node on `port`, or None when it does not answer as a cluster node."""
    # No retries: redis-py's default backs off for seconds on a refused connection, and a node
    # that does not answer yet is an answer here.
    client = redis.Redis(
        port=port,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        info: dict[str, str] = client.cluster("info")
        return info
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def is_ok(ports: tuple[int, ...]) -> bool:
    """Every node answers, knows all six, and says ``cluster_state:ok`` with three masters."""
    infos = (cluster_info(port) for port in ports)
    return all(
        info is not None
        and info.get("cluster_state") == "ok"
        and int(info.get("cluster_known_nodes", 0)) == NODES
        and int(info.get("cluster_size", 0)) == NODES // 2
        for info in infos
    )


def _formed(ports: tuple[int, ...]) -> bool:
    """Some node already belongs to a cluster (its slots or peers came from its nodes.conf)."""
    infos = [cluster_info(port) or {} for port in ports]
    return any(int(info.get("cluster_known_nodes", 1)) > 1 for info in infos)


def _binaries(url: str) -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        why = "redis-server or redis-cli is not on the PATH"
        raise ClusterUnavailable(HOW_TO_GET_A_CLUSTER.format(url=redact(url), why=why))
    return server, cli


def _start_node(binary: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    # Its own process group: a Ctrl-C must not stop a node before the services have drained.
    return subprocess.Popen(
        node_command(binary, port, workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,
        preexec_fn=dies_with_this_process(),
    )


def _wait(ready: Callable[[], bool], local: LocalCluster, deadline: float, what: str) -> None:
    """Poll until `ready`; stop the nodes started here and explain, past the deadline."""
    while not ready():
        dead = [p for p in local.procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            local.stop()
            raise ClusterUnavailable(f"the local Redis Cluster {what} (see its redis.log files)")
        time.sleep(0.05)


def _create(cli: str, ports: tuple[int, ...]) -> None:
    addresses = [f"127.0.0.1:{port}" for port in ports]
    subprocess.run(
        [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
    )  # fmt: skip


def ensure_cluster(url: str, workdir: Path, start_timeout: float = 30.0) -> LocalCluster:
    """Return once a six-node cluster is ok at `url`'s ports: reused, restarted or created."""
    if not is_loopback_redis(url):
        raise ClusterUnavailable(HOW_TO_GET_A_CLUSTER.format(url=redact(url), why="not loopback"))
    ports = cluster_ports(url)
    if is_ok(ports):
        log.info("local_cluster_reused", ports=list(ports))
        return LocalCluster(ports)
    server, cli = _binaries(url)
    missing = [port for port in ports if cluster_info(port) is None]
    local = LocalCluster(ports, [_start_node(server, p, workdir / str(p)) for p in missing])
    deadline = time.monotonic() + start_timeout
    _wait(lambda: all(cluster_info(p) is not None for p in ports), local, deadline, "did not start")
    if not _formed(ports):
        try:
            _create(cli, ports)
        except (subprocess.SubprocessError, OSError) as exc:
            local.stop()
            raise ClusterUnavailable(f"redis-cli --cluster create failed: {exc}") from exc
    _wait(lambda: is_ok(ports), local, deadline, "did not become ok")
    log.info("local_cluster_started", ports=list(ports), dir=str(workdir), started=len(missing))
    return local
