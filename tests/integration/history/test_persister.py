"""The persister end to end: real Redis, real SQLite and PostgreSQL, stories of delivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import orjson
import pytest
import redis

from services.history import HistoryStore, store_for_url
from services.persister.app import build_app, run_persister
from shared.models import ValidEnvelope
from shared.names import PERSISTER_GROUP
from shared.settings import Settings
from shared.wire import DATA_FIELD, envelope_body, parse_dead_letter
from tests.integration.history.conftest import PostgresServer
from tests.integration.history.factory import at, brewslm, pulse, raw_envelope

pytestmark = pytest.mark.integration


def family(n: int, prefix: str = "e") -> list[ValidEnvelope]:
    """`n` events of both dialects over 5 runs; run-1 and run-2 are children of run-0."""
    events: list[ValidEnvelope] = []
    for i in range(n):
        run = f"run-{i % 5}"
        parent = "run-0" if run in ("run-1", "run-2") else None
        if i % 3 == 0:
            events.append(pulse(run, at(i), event_id=f"{prefix}{i}", parent_run_id=parent))
        else:
            events.append(brewslm(run, at(i), event_id=f"{prefix}{i}", parent_run_id=parent))
    return events


def xadd(client: redis.Redis, stream: str, envelopes: Sequence[ValidEnvelope]) -> list[str]:
    """Put envelopes on the valid stream as the validator does (one __data__ field)."""
    with client.pipeline(transaction=False) as pipe:
        for env in envelopes:
            pipe.xadd(stream, {DATA_FIELD: envelope_body(env)})
        return [i.decode() for i in pipe.execute()]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll an async condition until it holds; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


@asynccontextmanager
async def persister_running(
    settings: Settings, consumer: str | None = None
) -> AsyncIterator[asyncio.Task[object]]:
    """The persister in a task; stopped (and drained) on exit."""
    stop = asyncio.Event()
    task: asyncio.Task[object] = asyncio.create_task(run_persister(settings, stop, consumer))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@asynccontextmanager
async def reader(url: str) -> AsyncIterator[HistoryStore]:
    store = store_for_url(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def pending(client: redis.Redis, settings: Settings) -> int:
    """Entries the persister group holds unacknowledged (-1 before the group exists)."""
    try:
        return int(client.xpending(settings.names.valid, PERSISTER_GROUP)["pending"])
    except redis.ResponseError as exc:
        if "NOGROUP" in str(exc):
            return -1
        raise


async def stored_ids(store: HistoryStore) -> list[str]:
    return [r.event_id async for r in store.iter_events()]


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test's settings on each backend in turn."""
    if request.param == "sqlite":
        return settings
    url = str(request.getfixturevalue("pg_url"))
    return settings.model_copy(update={"database_url": url})


async def test_every_valid_entry_is_stored_once_and_acknowledged(
    backend_settings: Settings, sync_client: redis.Redis
) -> None:
    settings = backend_settings
    # Given 300 envelopes on the valid stream, 50 of them twice (a redelivery or a redrive)
    events = family(300)
    xadd(sync_client, settings.names.valid, events)
    xadd(sync_client, settings.names.valid, events[100:150])
    # When the persister runs until the stream is drained
    async with reader(settings.database_url) as store:
        async with persister_running(settings):
            await eventually(
                lambda: _true(
                    pending(sync_client, settings) == 0 and _acked(sync_client, settings) == 350
                )
            )
        # Then each event is stored exactly once, and nothing is left pending
        ids = await stored_ids(store)
        assert sorted(ids) == sorted(e.event_id for e in events)
        assert pending(sync_client, settings) == 0
        assert sync_client.xlen(settings.names.dead) == 0
        # And the stage's counters say so (what GET /metrics serves)
        counters = sync_client.hgetall(settings.names.metrics("persister"))
        assert int(counters[b"n:persisted"]) == 300 and int(counters[b"n:duplicates"]) == 50
        # And the run-detail read sees the family in event-time order
        run = (await store.run_timeline("run-0", children=True)).rows
        expected = [e.event_id for e in events if e.event["run_id"] in ("run-0", "run-1", "run-2")]
        assert [r.event_id for r in run] == expected  # the events are in time order already


async def _true(value: bool) -> bool:
    return value


def _acked(client: redis.Redis, settings: Settings) -> int:
    """Entries the persister group has read (and, with nothing pending, acknowledged)."""
    try:
        groups = {g["name"].decode(): g for g in client.xinfo_groups(settings.names.valid)}
    except redis.ResponseError:  # no stream yet
        return 0
    group = groups.get(PERSISTER_GROUP)
    return int(group["entries-read"] or 0) if group else 0


async def test_malformed_and_poison_entries_go_to_dead_letters_without_blocking(
    backend_settings: Settings, sync_client: redis.Redis
) -> None:
    settings = backend_settings
    valid = settings.names.valid
    # Given good envelopes around an unparseable entry, an entry without __data__, and an
    # envelope the database refuses every time (an empty run id)
    before = xadd(sync_client, valid, family(40, "a"))
    garbage = sync_client.xadd(valid, {DATA_FIELD: b"{not json"}).decode()
    fieldless = sync_client.xadd(valid, {b"other": b"x"}).decode()
    poison_env = raw_envelope(
        {"project_id": 7, "run_id": "", "stage": "training", "severity": "info",
         "ts": at(5).isoformat()},
        event_id="poison",
    )  # fmt: skip
    (poison,) = xadd(sync_client, valid, [poison_env])
    after = xadd(sync_client, valid, family(40, "b"))
    # When the persister runs
    async with reader(settings.database_url) as store:
        async with persister_running(settings):
            await eventually(lambda: _true(sync_client.xlen(settings.names.dead) == 3))
            await eventually(lambda: _true(pending(sync_client, settings) == 0))
        # Then every good event is stored, around the bad ones
        assert len(await stored_ids(store)) == len(before) + len(after) == 80
    # And each bad entry is dead-lettered once, with its persist_* code and the DB's reason
    letters = {
        (letter := parse_dead_letter(fields)).source_id: letter
        for _, fields in sync_client.xrange(settings.names.dead)
    }
    assert letters[garbage].errors == ["persist_malformed_envelope"]
    assert letters[fieldless].errors == ["persist_malformed_envelope"]
    assert letters[poison].errors == ["persist_rejected"]
    assert "run_id" in letters[poison].message or "check" in letters[poison].message.lower()
    assert all(letter.stage == "persister" for letter in letters.values())
    assert letters[poison].original == envelope_body(poison_env)


async def test_entries_left_pending_by_a_crash_are_stored_once(
    backend_settings: Settings, sync_client: redis.Redis
) -> None:
    settings = backend_settings
    valid = settings.names.valid
    # Given a persister that read 120 entries and crashed: it had committed 60 of them but
    # acknowledged none; and a dead consumer holding 30 more
    events = family(150)
    xadd(sync_client, valid, events)
    sync_client.xgroup_create(valid, PERSISTER_GROUP, id="0")
    sync_client.xreadgroup(PERSISTER_GROUP, "persister-crashed", {valid: ">"}, count=120)
    sync_client.xreadgroup(PERSISTER_GROUP, "persister-gone", {valid: ">"}, count=30)
    async with reader(settings.database_url) as store:
        await store.migrate()
        assert await store.insert_batch(events[:60]) == 60
        # When the crashed persister comes back under its own name
        async with persister_running(settings, consumer="persister-crashed"):
            await eventually(lambda: _true(pending(sync_client, settings) == 0))
        # Then its pending entries and the dead consumer's are all stored, each once
        assert sorted(await stored_ids(store)) == sorted(e.event_id for e in events)
    assert sync_client.xlen(settings.names.dead) == 0


async def test_the_faststream_app_starts_the_worker_and_drains_on_stop(
    settings: Settings, sync_client: redis.Redis
) -> None:
    # Given envelopes on the valid stream and the persister as a FastStream app
    events = family(50)
    xadd(sync_client, settings.names.valid, events)
    app = build_app(settings)
    # When the app starts, runs a while, and stops
    await app.start()
    try:
        async with reader(settings.database_url) as store:
            await eventually(lambda: _count_is(store, 50))
    finally:
        await app.stop()
    # Then everything is stored and acknowledged
    assert pending(sync_client, settings) == 0


async def _count_is(store: HistoryStore, n: int) -> bool:
    try:
        return await store.count() == n
    except Exception:  # the persister may not have migrated the schema yet
        return False


async def test_postgres_outage_loses_nothing_and_duplicates_nothing(
    postgres_server: PostgresServer, settings: Settings, sync_client: redis.Redis
) -> None:
    # Given a persister writing to a private PostgreSQL while events flow
    url = f"{postgres_server.url}?search_path=runbus"
    settings = settings.model_copy(
        update={"database_url": url, "batch_size": 200, "history_retry_max_s": 0.3}
    )
    valid = settings.names.valid
    chunks = [family(500, f"c{k}-") for k in range(6)]
    async with persister_running(settings):
        xadd(sync_client, valid, chunks[0] + chunks[1])
        async with reader(url) as store:
            await eventually(lambda: _count_is(store, 1000))
        # When PostgreSQL dies mid-flow
        xadd(sync_client, valid, chunks[2])
        await asyncio.to_thread(postgres_server.stop)
        xadd(sync_client, valid, chunks[3])
        # Then the persister holds its batch unacknowledged, and dead-letters nothing
        await eventually(lambda: _true(pending(sync_client, settings) > 0))
        await asyncio.sleep(1.0)  # let it retry a few times (not a synchronisation)
        assert pending(sync_client, settings) > 0
        assert sync_client.xlen(settings.names.dead) == 0
        # When PostgreSQL comes back, and more events (some of them again) arrive
        await asyncio.to_thread(postgres_server.start)
        xadd(sync_client, valid, chunks[4] + chunks[5] + chunks[2][:100])
        # Then the persister resumes by itself and stores everything
        async with reader(url) as store:
            await eventually(lambda: _count_is(store, 3000), timeout=60)
            await eventually(lambda: _true(pending(sync_client, settings) == 0))
    async with reader(url) as store:
        ids = await stored_ids(store)
    assert len(ids) == len(set(ids)) == 3000
    assert set(ids) == {e.event_id for chunk in chunks for e in chunk}
    assert pending(sync_client, settings) == 0
    assert sync_client.xlen(settings.names.dead) == 0


async def test_an_event_published_twice_through_the_validator_is_stored_once(
    backend_settings: Settings, sync_client: redis.Redis
) -> None:
    from services.validator.app import run_validator

    settings = backend_settings
    # Given events published to the incoming stream, each of them twice (a producer retry, or
    # a redrive after a taxonomy fix: new entry ids, same event ids, same times)
    docs = [
        {"event_id": f"twice-{i}", "project_id": 7, "run_id": "exp-80", "stage": "training",
         "severity": "info", "ts": at(i).isoformat()}
        for i in range(40)
    ]  # fmt: skip
    with sync_client.pipeline(transaction=False) as pipe:
        for doc in docs + docs:
            pipe.xadd(settings.names.events, {DATA_FIELD: orjson.dumps(doc)})
        pipe.execute()
    # When the validator and the persister run
    stop = asyncio.Event()
    validator = asyncio.create_task(run_validator(settings, stop))
    try:
        async with reader(settings.database_url) as store:
            async with persister_running(settings):
                await eventually(lambda: _true(_acked(sync_client, settings) == 80))
                await eventually(lambda: _true(pending(sync_client, settings) == 0))
            # Then both copies went through the valid stream, and each event is stored once
            assert sync_client.xlen(settings.names.valid) == 80
            run = await store.run_timeline("exp-80")
            assert [r.event_id for r in run.rows] == [f"twice-{i}" for i in range(40)]
    finally:
        stop.set()
        await validator
