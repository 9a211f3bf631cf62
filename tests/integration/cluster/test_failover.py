"""Failover: a master of a 3+3 cluster is SIGKILLed under steady load (P=12, every stage running).

Its replica takes over in about two seconds (``cluster-node-timeout 1000``); the stages and the
producer ride the outage out with their own backoff, and the conservation law holds: every
published event in the history exactly once, every invalid one dead-lettered, nothing pending,
the coach cache equal to a rebuild. The recovery time (kill to the first event published after
it, on a partition the dead master served, reaching the history) is logged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from redis.crc import key_slot

from tests.cluster import RedisClusterFixture
from tests.integration.cluster.churn import (
    SteadyLoad,
    check_coach_equals_rebuild,
    check_history_and_dead_letters,
    live_settings,
    partitions_on,
    running_stages,
    wait_published,
    wait_quiescent,
    wait_recovered,
    wait_replicas_synced,
)
from tests.integration.cluster.workers import cluster_settings

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)
#: Generous: measured about 2-4 s (node timeout 1000 ms, then the clients' backoff).
RECOVERY_BOUND_S = 30.0


async def test_a_killed_master_loses_and_duplicates_nothing(
    private_cluster: RedisClusterFixture, tmp_path: Path
) -> None:
    settings = cluster_settings(private_cluster, tmp_path)
    client = private_cluster.client()
    wait_replicas_synced(private_cluster)
    # given the three stages and a steady producer on a 3+3 cluster with 12 partitions
    async with running_stages(settings) as alive:
        load = SteadyLoad(settings, tmp_path / "producer-spool.db")
        load.start()
        await wait_published(load, 300, alive)
        # when the master serving partition 0 is SIGKILLed under that load
        victim = private_cluster.node_of_slot(key_slot(settings.names.partition(0).events.encode()))
        hit = partitions_on(private_cluster, settings.names, victim)
        killed_at = time.monotonic()
        private_cluster.node(victim).kill()
        # then the partitions it served are processed again soon (its replica took over)
        recovery = await wait_recovered(load, settings, killed_at, hit, alive)
        log.warning("failover recovery: %.2f s for partitions %s", recovery, sorted(hit))
        print(f"\nfailover recovery: {recovery:.2f} s (partitions {sorted(hit)})")
        assert recovery < RECOVERY_BOUND_S
        await wait_published(load, load.count + 300, alive)
        load.stop()
        private_cluster.wait_ok()
        await wait_quiescent(client, settings, load, alive)
    # and nothing was lost, duplicated or left pending; every dead letter is an invalid event
    check_history_and_dead_letters(client, settings, load)
    # and the coach cache equals a rebuild from the history (read through a live node)
    await check_coach_equals_rebuild(live_settings(private_cluster, settings))
    client.close()
