"""Many workers on a real 3+3 cluster with 12 partitions: three validator processes, two
persisters (PostgreSQL) and two coaches share every partition through the groups alone; one of
each is SIGKILLed while it holds entries and never comes back.

The survivors' janitors claim what the dead held (``RUNBUS_CLAIM_IDLE_MS=1000``), and the
conservation law holds: every valid event once in the history, every invalid one exactly one
dead letter (with its code, on its own partition), nothing pending, the coach cache equal to a
rebuild, and every surviving process did a share of the work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from shared.settings import Settings
from tests.cluster import RedisClusterFixture
from tests.conftest import postgres_schema, wait_for
from tests.faults.load import EventMix, Offer, SteadyProducer
from tests.integration.cluster.fleet import Fleet
from tests.integration.cluster.story import (
    cluster_publisher,
    coach_diff,
    dead_entries,
    forget,
    law,
    misplaced,
    quiescent,
    snapshot,
)

pytestmark = pytest.mark.integration

EVENTS = 20_000
#: Events published after the kills (a faster pipeline holds entries for less time, so catching
#: each doomed process while it holds some can take most of the stream).
AFTER_KILLS = 5_000
RATE = 1500.0
#: (service, consumer slots): the doomed replica of each kind is the last slot.
FLEET = {"validator": (0, 1, 2), "persister": (0, 1), "coach": (0, 1)}


@pytest.fixture
def settings(redis_cluster: RedisClusterFixture, tmp_path: Path) -> Iterator[Settings]:
    """The test's namespace on the cluster, 12 partitions, a PostgreSQL schema of its own."""
    namespace = f"t{uuid.uuid4().hex[:8]}"
    with postgres_schema(f"cl_{namespace}", "many-workers cluster test") as url:
        yield Settings(
            redis_url=redis_cluster.url, redis_cluster=True, partitions=12, namespace=namespace,
            database_url=url, _env_file=None,
        )  # fmt: skip
        forget(redis_cluster, namespace, f"{namespace}r")


@pytest.fixture
def client(redis_cluster: RedisClusterFixture) -> Iterator[RedisCluster]:
    cluster = redis_cluster.client()
    yield cluster
    cluster.close()


@pytest.fixture
def fleet(tmp_path: Path, client: RedisCluster, settings: Settings) -> Iterator[Fleet]:
    """The stage processes (short claim idle and janitor interval); killed at the end."""
    processes = Fleet.on_cluster(
        tmp_path / "logs", client, settings,
        RUNBUS_CLAIM_IDLE_MS="1000", RUNBUS_JANITOR_INTERVAL_S="0.3",
    )  # fmt: skip
    yield processes
    processes.kill_all()


def test_seven_processes_share_twelve_partitions_and_survive_a_sigkill_of_each_kind(
    redis_cluster: RedisClusterFixture, settings: Settings, client: RedisCluster, fleet: Fleet
) -> None:
    began = time.monotonic()
    # given three validators, two persisters and two coaches, each reading every partition
    replicas = {s: [fleet.start(s, slot) for slot in slots] for s, slots in FLEET.items()}

    def ready() -> bool:
        fleet.assert_alive()
        return all(fleet.reading(r) for r in fleet.replicas)

    wait_for(ready, timeout=60, interval=0.2)  # slow only on a loaded machine
    # and a steady stream of both dialects over many runs, with invalid entries, on the cluster
    producer_client = redis_cluster.client()
    mix = EventMix(settings.namespace, projects=6)
    publish = cluster_publisher(producer_client, settings)
    producer = SteadyProducer(mix, publish, rate=RATE, tick=0.1)
    producer.start()
    try:
        # when one process of each kind is SIGKILLed while it holds entries, mid-stream
        held = {r[-1].name: fleet.kill_holding(r[-1]) for r in replicas.values()}
        killed_at = len(producer.offered)
        # the stream goes on after the kills, however long catching each one holding took
        until = max(EVENTS, killed_at + AFTER_KILLS)
        wait_for(lambda: len(producer.offered) >= until, timeout=60, interval=0.1)
    finally:
        producer.stop()
        producer_client.close()
    assert not producer.failures, producer.failures[:3]
    assert len(producer.offered) - killed_at >= AFTER_KILLS, "the kills came after the stream"
    published = time.monotonic()
    # then the survivors claim what the dead held and the pipeline quiesces
    wait_for(lambda: quiescent(client, settings.names), timeout=60, interval=0.2)
    quiesced = time.monotonic()
    fleet.assert_alive()
    exits = fleet.stop_all()
    assert set(exits.values()) == {0}, (exits, fleet.tails())
    check_law(client, settings, producer.offered)
    # and every surviving process handled a share of the work
    shares = {r.name: fleet.batches(r) for r in fleet.replicas if not r.retired}
    print(f"\nheld at death {held} (after {killed_at} offers); batches per survivor {shares}; "
          f"{len(producer.offered)} offers at {producer.rate:.0f}/s; published at "
          f"{published - began:.1f} s, quiescent at {quiesced - began:.1f} s, "
          f"checked at {time.monotonic() - began:.1f} s")  # fmt: skip
    assert len(shares) == 4 and all(n > 0 for n in shares.values()), shares


def check_law(client: RedisCluster, settings: Settings, offered: dict[str, Offer]) -> None:
    """Every offer stored once or dead-lettered once with its code, on its own partition;
    nothing pending; the coach cache equal to a rebuild from the PostgreSQL history."""
    letters = dead_entries(client, settings.names)
    snap = asyncio.run(snapshot(client, settings, letters))
    figures = law(offered, snap, "many workers")
    assert figures.problems == [], figures.problems
    assert (figures.duplicates, figures.lost, figures.misrouted, figures.pending) == (0, 0, 0, 0)
    assert figures.stored + figures.dead_lettered == len(offered) and figures.dead_lettered > 0
    assert misplaced(settings.names, letters) == []
    rebuilt = settings.model_copy(update={"namespace": f"{settings.namespace}r"})
    assert asyncio.run(coach_diff(client, settings, rebuilt)) == []
