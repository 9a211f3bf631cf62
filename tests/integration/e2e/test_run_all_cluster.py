"""`make run-cluster` as a new user meets it: one command starts a local 3+3 Redis Cluster and
the whole system on it with several partitions; every entry is accounted for exactly once, the
coach serves what the events imply, and Ctrl-C drains the services and stops the nodes."""

from __future__ import annotations

import contextlib
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from shared.names import Names
from shared.producer import Outgoing
from tests.conftest import free_port
from tests.integration.e2e.helpers import (
    RUNBUS,
    System,
    Workload,
    build_workload,
    history_event_ids,
    poll,
    system_env,
)
from tests.integration.e2e.test_run_all import coach_serves_the_expected_suggestions
from tests.integration.runtime.test_local_cluster import consecutive_free_ports

pytestmark = pytest.mark.integration
PARTITIONS = 6


class ClusterSystem(System):
    """`runbus run all --ensure-cluster`, its nodes' files in the test's directory."""

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(RUNBUS), "run", "all", "--ensure-cluster", *self.args],
                env=self.env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip


def publish_by_run(client: RedisCluster, names: Names, w: Workload) -> list[str]:
    """Plain XADD of every body to its run's partition; returns 'partition/entry id' per body."""
    placed: list[str] = []
    for body in w.bodies:
        stream = Outgoing.of_body(body).stream(names)
        entry_id = client.xadd(stream, {b"__data__": body})
        placed.append(f"{stream}/{entry_id.decode()}")
    return placed


def dead_sources(client: RedisCluster, names: Names) -> list[str]:
    """'source stream/source id' of every dead letter of every partition."""
    found = []
    for partition in names.all_partitions:
        for _, fields in client.xrange(partition.dead):
            found.append(f"{fields[b'source_stream'].decode()}/{fields[b'source_id'].decode()}")
    return found


def test_one_command_runs_the_bus_on_a_local_cluster(tmp_path: Path, namespace: str) -> None:
    # given `runbus run all --ensure-cluster` on six free ports, 6 partitions, SQLite history
    first = consecutive_free_ports()
    url = f"redis://127.0.0.1:{first}/0"
    workdir = tmp_path / "system"
    workdir.mkdir()
    env = system_env(namespace, url, f"sqlite:///{tmp_path / 'history.db'}", free_port(), workdir)
    env.update(RUNBUS_REDIS_CLUSTER="true", RUNBUS_PARTITIONS=str(PARTITIONS))
    system = ClusterSystem(env, workdir, "--cluster-dir", str(tmp_path / "nodes"))
    system.start()
    try:
        poll(system.ready, timeout=90)
        poll(lambda: "runbus is running" in system.output(), timeout=30)  # printed after ready
        names = Names(namespace, PARTITIONS)
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", first)])
        # when a few thousand entries are published with plain XADD, each on its run's partition
        w = build_workload()
        placed = publish_by_run(client, names, w)
        assert len({p.split("/", 1)[0] for p in placed}) == PARTITIONS  # every partition used
        # then every valid event is in the history once, every invalid entry dead-lettered once
        expected_dead = {p for p, ok in zip(placed, w.valid, strict=True) if not ok}
        expected_events = {e for e, ok in zip(w.event_ids, w.valid, strict=True) if ok and e}
        poll(lambda: set(dead_sources(client, names)) >= expected_dead, timeout=60)
        poll(lambda: set(history_event_ids(system.http, w)) >= expected_events, timeout=60)
        dead = Counter(dead_sources(client, names))
        assert set(dead) == expected_dead and max(dead.values()) == 1
        stored = Counter(history_event_ids(system.http, w))
        assert max(stored.values()) == 1
        # and the coach, whose projects live in their own slots, serves what the events imply
        coach_serves_the_expected_suggestions(system)
        client.close()
        # when it is stopped like Ctrl-C, it drains, exits 0 and stops its six nodes
        assert system.stop() == 0, system.output()[-3000:]
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=first, socket_timeout=2).ping()
    finally:
        system.close()
        shut_down(range(first, first + 6))


def shut_down(ports: range) -> None:
    """Stop any node a failed run left behind (a SIGKILLed supervisor cannot stop them)."""
    for port in ports:
        with contextlib.suppress(redis.RedisError):  # already gone
            redis.Redis(port=port, socket_timeout=2).shutdown(nosave=True)
