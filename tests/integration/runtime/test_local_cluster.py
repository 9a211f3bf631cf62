"""`runbus run all --ensure-cluster`'s local cluster: started, reused, restarted, stopped.

Each test uses six consecutive free loopback ports (and their cluster-bus ports) and its own
tmp_path, never the machine's Redis nor ``var/cluster``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from services.cli.run import run_all
from services.runtime.local_cluster import (
    NODES,
    ClusterUnavailable,
    LocalCluster,
    cluster_info,
    ensure_cluster,
    is_ok,
    node_ports_free,
)
from shared.names import Names
from shared.settings import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration
#: Linux's first ephemeral port (net.ipv4.ip_local_port_range).
EPHEMERAL = 32768


def consecutive_free_ports() -> int:
    """The first of six consecutive free ports whose cluster-bus ports are free too.

    Below the ephemeral range (32768 up), node and bus ports alike: the OS hands those out to
    other tests' sockets at any moment.
    """
    for _ in range(200):
        first = random.randint(10000, EPHEMERAL - 10000 - NODES)
        if node_ports_free(first):
            return first
    raise AssertionError("no six consecutive free ports")


@pytest.fixture
def url() -> str:
    return f"redis://127.0.0.1:{consecutive_free_ports()}/0"


@pytest.fixture
def started(url: str, tmp_path: Path) -> Iterator[LocalCluster]:
    """A local cluster started by the test, stopped at the end whatever happened."""
    local = ensure_cluster(url, tmp_path / "cluster")
    yield local
    local.stop()


def node_ids(local: LocalCluster) -> set[str]:
    client = redis.Redis(port=local.ports[0], decode_responses=True)
    return {line.split()[0] for line in client.execute_command("CLUSTER", "NODES").splitlines()}  # type: ignore[no-untyped-call]


def test_a_new_cluster_has_six_nodes_three_masters_and_serves_every_partition(
    started: LocalCluster, tmp_path: Path
) -> None:
    # Given a cluster started from nothing
    # Then this process started all six nodes, every one says ok, with three masters
    assert len(started.procs) == NODES and all(p.poll() is None for p in started.procs)
    for port in started.ports:
        info = cluster_info(port)
        assert info is not None and info["cluster_state"] == "ok"
        assert int(info["cluster_size"]) == NODES // 2
    # And their files are under the directory, one per port
    assert sorted(p.name for p in (tmp_path / "cluster").iterdir()) == sorted(
        str(p) for p in started.ports
    )
    # And a cluster client reaches every partition's stream
    client = RedisCluster(host="127.0.0.1", port=started.ports[0])
    for partition in Names("lc", 12).all_partitions:
        client.xadd(partition.events, {"a": "b"})
    assert sum(client.xlen(p.events) for p in Names("lc", 12).all_partitions) == 12
    client.close()


def test_a_running_cluster_is_reused_and_stop_kills_the_six_nodes(
    started: LocalCluster, url: str, tmp_path: Path
) -> None:
    # Given a running local cluster
    ids = node_ids(started)
    # When it is ensured again
    again = ensure_cluster(url, tmp_path / "cluster")
    # Then nothing is started: the same six nodes serve
    assert again.procs == [] and again.ports == started.ports and node_ids(again) == ids
    again.stop()  # stops nothing: it started nothing
    assert is_ok(started.ports)
    # When the first one is stopped
    procs = list(started.procs)
    started.stop()
    # Then all six processes are gone and no node answers
    assert all(p.poll() is not None for p in procs) and started.procs == []
    assert all(cluster_info(port) is None for port in started.ports)


def test_a_stopped_cluster_comes_back_from_its_files(
    started: LocalCluster, url: str, tmp_path: Path
) -> None:
    # Given a cluster that held data, stopped
    client = RedisCluster(host="127.0.0.1", port=started.ports[0])
    client.set("kept", "yes")
    client.close()
    ids = node_ids(started)
    started.stop()
    # When it is ensured again from the same directory
    back = ensure_cluster(url, tmp_path / "cluster")
    try:
        # Then the same six nodes come back (no new cluster was created) with their data
        assert len(back.procs) == NODES and node_ids(back) == ids and is_ok(back.ports)
        client = RedisCluster(host="127.0.0.1", port=back.ports[0])
        assert client.get("kept") == b"yes"
        client.close()
    finally:
        back.stop()


def test_only_a_loopback_url_gets_a_local_cluster(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnavailable, match="not loopback"):
        ensure_cluster("redis://10.1.2.3:7000/0", tmp_path)
    with pytest.raises(ClusterUnavailable, match="at most"):
        ensure_cluster("redis://127.0.0.1:55533/0", tmp_path)
    assert not (tmp_path / "55533").exists()


def test_run_all_refuses_ensure_cluster_without_cluster_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given settings without RUNBUS_REDIS_CLUSTER (the children would not speak cluster)
    settings = Settings(redis_cluster=False, api_port=free_port(), _env_file=None)  # type: ignore[call-arg]
    # Then `runbus run all --ensure-cluster` says what is missing, exits 2, starts nothing
    assert run_all(settings, ensure_cluster=True) == 2
    assert "RUNBUS_REDIS_CLUSTER=true" in capsys.readouterr().err
