"""A real Redis Cluster for tests: six ``redis-server --cluster-enabled yes`` on free ports.

Three masters and three replicas on loopback, created with ``redis-cli --cluster create``
(the standard even split of the 16384 slots), ``cluster-node-timeout`` short so a killed
master's replica takes over in about two seconds. Never the machine's shared Redis: each
cluster has its own ports and directory, and is killed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from services.runtime.local_cluster import BUS_OFFSET, MAX_PORT, port_free


def _free_port() -> int:
    """A free port whose cluster bus port (+10000) exists: redis-server refuses one above 55535."""
    from tests.conftest import free_port

    port = free_port()
    while port > MAX_PORT or not port_free(port + BUS_OFFSET):
        port = free_port()
    return port


@dataclass
class ClusterNodeProcess:
    """One redis-server of the cluster."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart, on the same port and files) this node."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("cluster tests need redis-server (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"]
        args += ["--cluster-config-file", "nodes.conf", "--appendonly", "yes"]
        args += ["--appendfsync", "always", "--dir", str(self.workdir)]
        args += ["--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        """SIGKILL it (AOF fsynced on every write: nothing acknowledged is lost)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def client(self) -> redis.Redis:
        """A plain client of this node alone."""
        return redis.Redis(port=self.port, socket_timeout=5)


@dataclass
class RedisClusterFixture:
    """Six nodes, three masters with a replica each, all slots covered."""

    workdir: Path
    nodes: list[ClusterNodeProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A URL of one node: a cluster client discovers the others."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, attempts: int = 3) -> None:
        """Start six nodes and create the cluster; wait until every node says it is ok.

        A free port's cluster-bus twin (+10000) may be taken by the time a node binds it, and
        on a loaded machine a formation can stall, so a round that does not end in a healthy
        cluster is sent again, on other ports.
        """
        for attempt in range(1, attempts + 1):
            try:
                self._form()
                return
            except AssertionError:
                self.stop()
                if attempt == attempts:
                    raise

    def _form(self) -> None:
        self._start_nodes()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "1",
             "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
        self.wait_ok()

    def _start_nodes(self) -> None:
        self.nodes = [
            ClusterNodeProcess(port, self.workdir / str(port))
            for port in (_free_port() for _ in range(6))
        ]
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            _wait(lambda n=node: _pings(n), 20, f"node {node.port} did not start")

    def wait_ok(self, timeout: float = 45.0) -> None:
        """Until every live node reports ``cluster_state:ok`` and sees three masters."""
        try:
            _wait(self._all_ok, timeout, "the cluster did not become ok")
        except AssertionError as exc:
            raise AssertionError(f"the cluster did not become ok: {self._states()}") from exc

    def _states(self) -> dict[int, str]:
        """Each node's state, size and known nodes (what a failed wait_ok reports)."""
        states: dict[int, str] = {}
        for node in self.nodes:
            try:
                info = node.client().cluster("info")
            except redis.RedisError as exc:
                states[node.port] = repr(exc)
                continue
            states[node.port] = (
                "{cluster_state} size={cluster_size} known={cluster_known_nodes}".format(**info)
            )
        return states

    def _all_ok(self) -> bool:
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                info = node.client().cluster("info")
            except redis.RedisError:
                return False
            if info.get("cluster_state") != "ok" or int(info.get("cluster_size", 0)) != 3:
                return False
        return True

    def client(self) -> RedisCluster:
        """A blocking cluster client (bytes)."""
        live = [n for n in self.nodes if n.proc is not None]
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in live])

    def masters(self) -> dict[int, tuple[int, int]]:
        """Port of each master -> (first slot, last slot) of its range(s), from CLUSTER SLOTS."""
        live = next(n for n in self.nodes if n.proc is not None)
        owners: dict[int, tuple[int, int]] = {}
        for start, end, master, *_ in live.client().cluster("slots"):
            owners[int(master[1])] = (int(start), int(end))
        return owners

    def node_of_slot(self, slot: int) -> int:
        """The port of the master serving `slot`."""
        live = next(n for n in self.nodes if n.proc is not None)
        for start, end, master, *_ in live.client().cluster("slots"):
            if int(start) <= slot <= int(end):
                return int(master[1])
        raise AssertionError(f"slot {slot} is not served")

    def node(self, port: int) -> ClusterNodeProcess:
        """The node listening on `port`."""
        return next(n for n in self.nodes if n.port == port)

    def stop(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.kill()


def _pings(node: ClusterNodeProcess) -> bool:
    try:
        return bool(node.client().ping())
    except redis.RedisError:
        return False


def _wait(predicate: object, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(message)
