"""History at scale: several persisters writing one PostgreSQL database at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import pytest
import redis

from services.history import migrations, store_for_url
from services.history.postgres import PostgresHistoryStore, stage_and_insert
from services.history.records import records_of
from services.persister.app import run_persister
from shared.models import ValidEnvelope
from shared.settings import Settings
from shared.wire import DATA_FIELD, envelope_body
from tests.conftest import postgres_schema
from tests.integration.history.factory import at, brewslm, pulse
from tests.integration.history.test_persister import eventually, pending

pytestmark = pytest.mark.integration


async def _blocked_by(watcher: asyncpg.Connection[Any], pid: int) -> bool:
    """True when a batch insert waits for a lock that backend `pid` holds."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) "
        "AND query LIKE 'INSERT INTO history %'"
    )
    return bool(await watcher.fetchval(sql, pid))


async def test_a_batch_rolled_back_by_a_deadlock_is_run_again_not_surfaced(pg_url: str) -> None:
    store = PostgresHistoryStore(pg_url)
    await store.open()
    await store.migrate()
    # (the month's partition made first: creating it would wait for the other writer instead)
    await store.insert_batch([brewslm("exp-d", at(0), event_id="first")])
    x, y = (brewslm("exp-d", at(i), event_id=f"d{i}") for i in range(2))
    other = await asyncpg.connect(pg_url)
    watcher = await asyncpg.connect(pg_url)
    try:
        # Given another writer that inserted X in a transaction still open (and that is never
        # the deadlock's victim: it checks for deadlocks only after 10 s)
        await other.execute("SET deadlock_timeout = '10s'")
        transaction = other.transaction()
        await transaction.start()
        await stage_and_insert(other, records_of([x]))
        # When the store inserts [Y, X] (it holds Y, waits for X) and the other inserts Y
        batch = asyncio.create_task(store.insert_batch([y, x]))
        await eventually(lambda: _blocked_by(watcher, other.get_server_pid()), timeout=10)
        # (the deadlock: PostgreSQL rolls the store's transaction back)
        await asyncio.wait_for(stage_and_insert(other, records_of([y])), 30)
        await transaction.commit()
        # Then the store's batch is run again and finds both events stored: no error
        assert await asyncio.wait_for(batch, 30) == 0
        assert await store.count() == 3
    finally:
        await other.close()
        await watcher.close()
        await store.close()


def workload() -> tuple[list[ValidEnvelope], list[ValidEnvelope]]:
    """600 distinct events; and the entries to publish: each once, 200 of them twice more,
    shuffled so duplicates land in different batches of different persisters."""
    events: list[ValidEnvelope] = []
    for i in range(600):
        make = pulse if i % 3 == 0 else brewslm
        events.append(make(f"run-{i % 7}", at(i), event_id=f"c{i}"))
    entries = events + events[100:300] * 2
    random.Random(13).shuffle(entries)
    return events, entries


def xadd(client: redis.Redis, stream: str, envelopes: Sequence[ValidEnvelope]) -> None:
    with client.pipeline(transaction=False) as pipe:
        for env in envelopes:
            pipe.xadd(stream, {DATA_FIELD: envelope_body(env)})
        pipe.execute()


def recording_inserts(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Every error a PostgreSQL batch insert raises to the persister, from now on."""
    errors: list[BaseException] = []
    insert: Callable[..., Awaitable[int]] = PostgresHistoryStore.insert_batch

    async def recorded(self: PostgresHistoryStore, envelopes: Sequence[ValidEnvelope]) -> int:
        try:
            return await insert(self, envelopes)
        except Exception as exc:
            errors.append(exc)
            raise

    monkeypatch.setattr(PostgresHistoryStore, "insert_batch", recorded)
    return errors


async def test_three_persisters_on_one_postgres_store_every_event_once_each_a_share(
    settings: Settings, sync_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with postgres_schema(f"hist_{settings.namespace}", "these stories") as url:
        settings = settings.model_copy(update={"database_url": url, "batch_size": 20})
        await migrated(url)
        errors = recording_inserts(monkeypatch)
        # Given three persisters (three hosts, as far as Redis can tell) on one database
        stop = asyncio.Event()
        names = [f"persister-host{i}" for i in range(3)]
        tasks = [asyncio.create_task(run_persister(settings, stop, n)) for n in names]
        await eventually(lambda: _group_exists(sync_client, settings))
        # When one valid stream carries 600 events, 200 of them in three entries each
        events, entries = workload()
        xadd(sync_client, settings.names.valid, entries)
        acked = len(entries)
        await eventually(lambda: _drained(sync_client, settings, acked))
        stop.set()
        workers = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        # Then every event is stored exactly once
        store = store_for_url(url)
        await store.open()
        try:
            ids = [row.event_id async for row in store.iter_events()]
        finally:
            await store.close()
        assert sorted(ids) == sorted(e.event_id for e in events)
        # And each persister wrote a share; together they counted every duplicate
        persisted = [w.totals.counters["persisted"] for w in workers]
        duplicates = sum(w.totals.counters["duplicates"] for w in workers)
        assert all(n > 0 for n in persisted) and sum(persisted) == 600, persisted
        assert duplicates == 400
        # And no insert failed (no deadlock or serialization error reached a persister)
        assert errors == []
        assert sync_client.xlen(settings.names.dead) == 0


async def migrated(url: str) -> None:
    """Migrate first, so that the persisters start reading together."""
    store = store_for_url(url)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()


async def _group_exists(client: redis.Redis, settings: Settings) -> bool:
    return pending(client, settings) >= 0


async def _drained(client: redis.Redis, settings: Settings, total: int) -> bool:
    group = client.xinfo_groups(settings.names.valid)
    return pending(client, settings) == 0 and bool(group) and group[0]["entries-read"] == total


async def test_persisters_starting_together_migrate_a_fresh_schema_once(pg_url: str) -> None:
    # Given three stores on a schema that does not exist yet (three persisters starting)
    stores = [PostgresHistoryStore(pg_url) for _ in range(3)]
    for store in stores:
        await store.open()
    try:
        # When they all migrate at once
        applied = await asyncio.gather(*(store.migrate() for store in stores))
        # Then none fails, and the migrations were applied once
        every = [m.version for m in migrations.migrations("postgres")]
        assert sorted(applied, key=len) == [[], [], every]
        assert await stores[0].count() == 0
    finally:
        for store in stores:
            await store.close()
