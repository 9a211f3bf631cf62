"""Stories of the stage workers on a real 3+3 cluster with 12 partitions.

Each stage process reads every partition through its group; moves and dead letters stay in the
entry's own partition; processes share the work through the groups alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from redis.cluster import RedisCluster

from services.history import HistoryStore, store_for_url
from services.persister.app import run_persister
from services.validator.app import run_validator
from services.validator.io import validate_batch
from shared import service
from shared.connections import async_redis
from shared.consumer import BatchContext, Entry
from shared.names import PERSISTER_GROUP, VALIDATOR_GROUP, StreamKind
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.workers import PartitionWorkers
from tests.cluster import RedisClusterFixture
from tests.integration.api.helpers import eventually
from tests.integration.cluster.workers import (
    brewslm,
    cluster_settings,
    dead_letters,
    forget,
    pending,
    pulse,
    routed,
    run_ids,
    valid_sources,
    xadd_all,
)

pytestmark = pytest.mark.integration

BAD_STAGE = {"project_id": 7, "run_id": "r", "stage": "nope", "severity": "info",
             "ts": "2026-05-01T12:00:00Z"}  # fmt: skip
INVALID = {
    "invalid_stage:nope": orjson.dumps(BAD_STAGE),
    "malformed_json": b'{"project_id": 1, "run_id": ',
}


@pytest.fixture
def settings(redis_cluster: RedisClusterFixture, tmp_path: Path) -> Settings:
    return cluster_settings(redis_cluster, tmp_path, max_deliveries=1000)


@pytest.fixture
def client(redis_cluster: RedisClusterFixture, settings: Settings) -> Iterator[RedisCluster]:
    """A blocking cluster client; the test's keys are deleted afterwards."""
    cluster = redis_cluster.client()
    try:
        yield cluster
    finally:
        forget(cluster, settings.names)
        cluster.close()


@asynccontextmanager
async def history(settings: Settings) -> AsyncIterator[HistoryStore]:
    store = store_for_url(settings.database_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def publish_mixed(client: RedisCluster, settings: Settings) -> tuple[set[str], dict[str, str]]:
    """On every partition: 4 runs routed there, one event of each dialect each, and the invalid
    entries. Returns (event ids, {entry id: partition stream + expected code})."""
    names = settings.names
    events: set[str] = set()
    dead: dict[str, str] = {}
    for p in names.all_partitions:
        bodies: list[bytes] = []
        for k, run in enumerate(run_ids(names, p, 4)):
            bodies += [brewslm(run, f"b-{p.index}-{k}"), pulse(run, f"p-{p.index}-{k}")]
            events |= {f"b-{p.index}-{k}", f"p-{p.index}-{k}"}
        ids = xadd_all(client, p.events, bodies + list(INVALID.values()))
        for entry_id, code in zip(ids[len(bodies) :], INVALID, strict=True):
            dead[f"{p.events}/{entry_id}"] = code
    return events, dead


def nothing_pending(client: RedisCluster, settings: Settings) -> bool:
    names = settings.names
    return all(
        pending(client, p.events, VALIDATOR_GROUP) == 0
        and pending(client, p.valid, PERSISTER_GROUP) == 0
        for p in names.all_partitions
    )


async def _count(store: HistoryStore) -> int:
    try:
        return await store.count()
    except Exception:  # not migrated yet
        return -1


async def test_every_entry_ends_once_in_history_or_in_its_own_partitions_dead_stream(
    settings: Settings, client: RedisCluster
) -> None:
    names = settings.names
    # given both dialects and invalid entries on every partition's incoming stream
    events, dead = publish_mixed(client, settings)
    # when one validator and one persister run against the cluster
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_validator(settings, stop)),
        asyncio.create_task(run_persister(settings, stop)),
    ]
    try:
        async with history(settings) as store:
            for _ in range(600):
                if await _count(store) == len(events) and nothing_pending(client, settings):
                    break
                await asyncio.sleep(0.05)
            stored = [r.event_id async for r in store.iter_events()]
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    # then every valid event is in the history exactly once
    assert sorted(stored) == sorted(events)
    # and every entry of partition p went to p's own valid or dead stream, with its code
    letters = {}
    for p in names.all_partitions:
        own = {i for i, _ in client.xrange(p.events)}
        assert {s.encode() for s in valid_sources(client, p)} <= own
        assert len(valid_sources(client, p)) == 8
        for letter in dead_letters(client, p):
            assert letter.source_stream == p.events
            letters[f"{letter.source_stream}/{letter.source_id}"] = letter.errors
    assert letters == {key: [code] for key, code in dead.items()}
    # and nothing is pending in any group of any partition
    assert nothing_pending(client, settings)


async def test_two_validator_processes_share_every_partitions_work(
    settings: Settings, client: RedisCluster
) -> None:
    names = settings.names
    # given two validators with different consumer names, both reading every partition
    stop = asyncio.Event()
    first = asyncio.create_task(run_validator(settings, stop, "validator-a"))
    second = asyncio.create_task(run_validator(settings, stop, "validator-b"))
    try:
        await eventually(lambda: all(client.exists(p.events) for p in names.all_partitions))
        # when events arrive on every partition, in rounds
        total = 0
        for rnd in range(10):
            for p in names.all_partitions:
                xadd_all(
                    client, p.events, [brewslm("r", f"e-{rnd}-{p.index}-{i}") for i in range(5)]
                )
            total += 5 * len(names.all_partitions)
            await eventually(
                lambda n=total: sum(routed(client, p) for p in names.all_partitions) == n
            )
    finally:
        stop.set()
        a, b = await asyncio.gather(first, second)
    # then each validator handled a share, and together every entry exactly once
    assert a.entries > 0 and b.entries > 0, (a.entries, b.entries)
    assert a.entries + b.entries == total
    assert sum(len(valid_sources(client, p)) for p in names.all_partitions) == total
    # and both consumers read in several partitions' groups
    readers = [
        {c["name"] for c in client.xinfo_consumers(p.events, VALIDATOR_GROUP)}
        for p in names.all_partitions
    ]
    assert sum(len(r) == 2 for r in readers) >= 2, readers


async def test_a_poison_entry_on_one_partition_does_not_hold_up_the_others(
    settings: Settings, client: RedisCluster
) -> None:
    names = settings.names
    sick = names.partition(3)
    released = asyncio.Event()
    failures = 0

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        nonlocal failures
        if not released.is_set() and any(e.data == b"poison" for e in batch):
            failures += 1
            raise RuntimeError("poison")
        await validate_batch(batch, ctx)

    spec = service.WorkerSpec(
        PIPELINE.stage("validator"), handler=lambda s, c, e: service.no_resources(handler)
    )
    # given a poison entry first on partition 3, and good entries on every partition
    xadd_all(client, sick.events, [b"poison"])
    for p in names.all_partitions:
        xadd_all(client, p.events, [brewslm("r", f"e-{p.index}-{i}") for i in range(5)])
    stop = asyncio.Event()
    task = asyncio.create_task(service.run_worker(spec, settings, stop))
    try:
        # when the validator runs, then every other partition is done while 3 still fails
        others = [p for p in names.all_partitions if p != sick]
        await eventually(lambda: all(client.xlen(p.valid) == 5 for p in others), timeout=30)
        assert failures >= 1 and routed(client, sick) < 6
        assert pending(client, sick.events, VALIDATOR_GROUP) >= 1
        # and once the poison can be handled, partition 3 catches up, into its own streams
        released.set()
        await eventually(lambda: routed(client, sick) == 6, timeout=30)
    finally:
        stop.set()
        await task
    [letter] = dead_letters(client, sick)
    assert letter.source_stream == sick.events and letter.errors == ["malformed_json"]
    assert all(client.xlen(p.dead) == 0 for p in others)


async def test_a_trim_on_one_partition_trims_that_partition_only(
    settings: Settings, client: RedisCluster
) -> None:
    names = settings.names
    settings = settings.model_copy(update={"stream_min_age_s": 0.0})
    # given 300 entries on every partition's incoming stream, all read and acknowledged
    aclient = async_redis(settings)
    try:
        for p in names.all_partitions:
            xadd_all(client, p.events, [b"{}"] * 300)
            client.xgroup_create(p.events, VALIDATOR_GROUP, id="0")
            for entry_id, _ in client.xreadgroup(VALIDATOR_GROUP, "c", {p.events: ">"})[0][1]:
                client.xack(p.events, VALIDATOR_GROUP, entry_id)
        workers = PartitionWorkers(
            aclient, settings, reads=StreamKind.EVENTS, group=VALIDATOR_GROUP,
            stage="validator", handler=validate_batch,
        )  # fmt: skip
        # when partition 5's worker trims
        await workers.workers[5].trim()
    finally:
        await aclient.aclose()
    # then partition 5 lost its acknowledged entries, and every other partition kept all
    lengths = {p.index: int(client.xlen(p.events)) for p in names.all_partitions}
    assert lengths[5] < 300
    assert all(n == 300 for i, n in lengths.items() if i != 5), lengths
