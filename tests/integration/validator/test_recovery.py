"""Stories: crashes, poison entries, dead consumers, deleted entries and groups, trimming."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
import redis.asyncio as aredis

from shared.consumer import BatchContext, Entry, StreamWorker, safe_trim_id
from shared.names import PERSISTER_GROUP, VALIDATOR_GROUP
from shared.settings import Settings
from tests.conftest import REDIS_URL, wait_for
from tests.integration.validator.helpers import (
    dumps,
    good_event,
    outcome,
    routed,
    validate_all,
    xadd_raw,
)
from tests.workers import run_until

pytestmark = pytest.mark.integration


def _start_validator(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RUNBUS_REDIS_URL": REDIS_URL,
        "RUNBUS_NAMESPACE": settings.namespace,
        "RUNBUS_CONSUMER_NAME": "validator-under-test",
        "RUNBUS_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-c", "from services.cli.main import app; app()", "run", "validator"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    sync_client: redis.Redis, settings: Settings
) -> None:
    # given a large backlog of mixed valid and invalid entries
    total = 60_000
    bodies = [dumps(good_event(run_id=f"exp-{i}")) if i % 3 else b"{broken" for i in range(total)]
    ids = xadd_raw(sync_client, settings.names.events, bodies)
    kills = 0
    # when the validator is SIGKILLed repeatedly while it works through it
    while routed(sync_client, settings) < total and kills < 3:
        proc = _start_validator(settings)
        before = routed(sync_client, settings)
        wait_for(lambda b=before: routed(sync_client, settings) > b + 2000, timeout=30)  # type: ignore[misc]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
    assert kills >= 2, "the validator finished before it could be killed twice"
    # and it is started once more and left to finish
    proc = _start_validator(settings)
    try:
        wait_for(lambda: routed(sync_client, settings) >= total, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    # then every entry is on exactly one of valid or dead, once, and nothing is pending
    valid, dead = outcome(sync_client, settings)
    assert set(valid) | set(dead) == set(ids)
    assert len(valid) + len(dead) == total
    assert sync_client.xpending(settings.names.events, VALIDATOR_GROUP)["pending"] == 0


def _worker(client: aredis.Redis, settings: Settings, handler, consumer: str) -> StreamWorker:  # type: ignore[no-untyped-def]
    return StreamWorker(
        client, settings, stream=settings.names.events, group=VALIDATOR_GROUP,
        stage="validator", handler=handler, consumer=consumer,
    )  # fmt: skip


async def test_poison_entry_is_dead_lettered_and_the_rest_flow(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a handler that crashes on one specific entry every time
    ids = xadd_raw(sync_client, settings.names.events, [dumps({"n": i}) for i in range(50)])
    poison = ids[17]
    handled: list[str] = []

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        if any(e.id == poison for e in batch):
            raise RuntimeError("boom")
        handled.extend(e.id for e in batch)
        await ctx.ack([e.id for e in batch])

    worker = _worker(async_client, settings, handler, "c1")
    # when it runs
    await run_until(
        worker, lambda: sync_client.xlen(settings.names.dead) == 1 and len(handled) == 49
    )
    # then the poison entry alone is dead-lettered after max_deliveries, the others handled once
    ((_, fields),) = sync_client.xrange(settings.names.dead)
    assert fields[b"source_id"].decode() == poison
    assert fields[b"errors"] == b'["delivery_attempts_exceeded"]'
    assert int(fields[b"delivery_count"]) == settings.max_deliveries + 1
    assert sorted(handled) == sorted(set(ids) - {poison})
    assert sync_client.xpending(settings.names.events, VALIDATOR_GROUP)["pending"] == 0


def test_entries_of_a_dead_consumer_are_claimed(
    sync_client: redis.Redis, settings: Settings
) -> None:
    # given entries delivered to a consumer that died without acknowledging them
    ids = xadd_raw(sync_client, settings.names.events, [dumps(good_event()) for _ in range(30)])
    sync_client.xgroup_create(settings.names.events, VALIDATOR_GROUP, id="0")
    sync_client.xreadgroup(VALIDATOR_GROUP, "dead-one", {settings.names.events: ">"}, count=100)
    # when a live validator runs (claim_idle_ms is 500 in the test settings)
    validate_all(sync_client, settings, len(ids), timeout=20)
    # then it took them over and routed each once
    valid, _ = outcome(sync_client, settings)
    assert set(valid) == set(ids)
    assert sync_client.xpending(settings.names.events, VALIDATOR_GROUP)["pending"] == 0


async def test_deleted_pending_entries_are_acknowledged(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    # given our own pending entries, one of which was deleted from the stream meanwhile
    ids = xadd_raw(sync_client, settings.names.events, [dumps(good_event()) for _ in range(5)])
    sync_client.xgroup_create(settings.names.events, VALIDATOR_GROUP, id="0")
    sync_client.xreadgroup(VALIDATOR_GROUP, "me", {settings.names.events: ">"}, count=10)
    sync_client.xdel(settings.names.events, ids[2])
    seen: list[str] = []

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        seen.extend(e.id for e in batch)
        await ctx.ack([e.id for e in batch])

    # when the same consumer restarts, then it acknowledges the hole and handles the rest
    worker = _worker(async_client, settings, handler, "me")
    await run_until(
        worker,
        lambda: sync_client.xpending(settings.names.events, VALIDATOR_GROUP)["pending"] == 0,
    )
    assert seen == [i for i in ids if i != ids[2]]


async def test_deleted_group_and_stream_are_recreated(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    seen: list[str] = []

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        seen.extend(e.id for e in batch)
        await ctx.ack([e.id for e in batch])

    worker = _worker(async_client, settings, handler, "me")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        first = xadd_raw(sync_client, settings.names.events, [b"{}"])[0]
        await _poll(lambda: first in seen)
        # when an operator deletes the whole stream (and so the group)
        sync_client.delete(settings.names.events)
        later = xadd_raw(sync_client, settings.names.events, [b"{}"])[0]
        # then the worker recreates the group and keeps consuming
        await _poll(lambda: later in seen)
        assert not task.done()
    finally:
        stop.set()
        await task


async def _poll(predicate, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_trim_never_passes_what_a_group_still_needs(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    valid = settings.names.valid
    ids = xadd_raw(sync_client, valid, [b"{}"] * 10)
    # given only the persister group exists: the coach has acknowledged nothing yet
    sync_client.xgroup_create(valid, PERSISTER_GROUP, id="0")
    assert await safe_trim_id(async_client, valid, settings) is None
    # given both groups, the coach has read everything, the persister has 3 pending
    sync_client.xgroup_create(valid, "coach", id="$")
    sync_client.xreadgroup(PERSISTER_GROUP, "p", {valid: ">"}, count=10)
    sync_client.xack(valid, PERSISTER_GROUP, *ids[:7])
    # then the floor is the persister's oldest pending entry
    assert await safe_trim_id(async_client, valid, settings) == ids[7]
    sync_client.xtrim(valid, minid=ids[7], approximate=False)
    assert [i.decode() for i, _ in sync_client.xrange(valid)] == ids[7:]
