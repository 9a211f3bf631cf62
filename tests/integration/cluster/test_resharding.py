"""Resharding: slots holding partitions move from one master to another under steady load.

``redis-cli --cluster reshard`` moves the source master's lowest slots (the partitions' streams
in them travel by ``MIGRATE``) while the producer publishes and the three stages consume at
P=12; the clients follow ``ASK``/``MOVED`` (and wait out ``TRYAGAIN``), and the conservation
law holds: every published event in the history exactly once, every invalid one
dead-lettered, nothing pending, the coach cache equal to a rebuild.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from redis.crc import key_slot

from tests.cluster import RedisClusterFixture
from tests.integration.cluster.churn import (
    SteadyLoad,
    check_coach_equals_rebuild,
    check_history_and_dead_letters,
    running_stages,
    wait_published,
    wait_quiescent,
)
from tests.integration.cluster.workers import cluster_settings

pytestmark = pytest.mark.integration

#: Two of the twelve partition bands (16384 / 12 slots each) of the first master's range.
SLOTS_MOVED = 2 * 16384 // 12 + 1


def node_id(cluster: RedisClusterFixture, port: int) -> str:
    """The cluster node id of the node on `port`."""
    return str(cluster.node(port).client().execute_command("CLUSTER MYID").decode())


def reshard(cluster: RedisClusterFixture, source: int, target: int, slots: int) -> None:
    """``redis-cli --cluster reshard``: move `slots` of `source`'s slots to `target`."""
    subprocess.run(
        ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{source}",
         "--cluster-from", node_id(cluster, source), "--cluster-to", node_id(cluster, target),
         "--cluster-slots", str(slots), "--cluster-yes"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
    )  # fmt: skip


async def test_slots_moved_under_load_lose_and_duplicate_nothing(
    private_cluster: RedisClusterFixture, tmp_path: Path
) -> None:
    settings = cluster_settings(private_cluster, tmp_path)
    names = settings.names
    client = private_cluster.client()
    home = {p.index: private_cluster.node_of_slot(key_slot(p.events.encode()))
            for p in names.all_partitions}  # fmt: skip
    # given the three stages and a steady producer on a 3+3 cluster with 12 partitions
    async with running_stages(settings) as alive:
        load = SteadyLoad(settings, tmp_path / "producer-spool.db")
        load.start()
        await wait_published(load, 300, alive)
        # when the first master's lowest slots, holding partitions, move to another master
        source, target, *_ = sorted(private_cluster.masters(), key=private_cluster.masters().get)
        started = time.monotonic()
        task = asyncio.create_task(
            asyncio.to_thread(reshard, private_cluster, source, target, SLOTS_MOVED)
        )
        while not task.done():
            alive()
            await asyncio.sleep(0.1)
        await task
        took = time.monotonic() - started
        moved = {i for i in home if private_cluster.node_of_slot(
            key_slot(names.partition(i).events.encode())) != home[i]}  # fmt: skip
        print(f"\nresharding: {SLOTS_MOVED} slots, partitions {sorted(moved)}, {took:.2f} s")
        assert moved and all(home[i] == source for i in moved)
        await wait_published(load, load.count + 300, alive)
        load.stop()
        await wait_quiescent(client, settings, load, alive)
    # then nothing was lost, duplicated or left pending; every dead letter is an invalid event
    check_history_and_dead_letters(client, settings, load)
    # and the coach cache equals a rebuild from the history
    await check_coach_equals_rebuild(settings)
    client.close()
