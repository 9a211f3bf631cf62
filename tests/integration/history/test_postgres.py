"""PostgreSQL specifics: monthly partitions, least privilege, connection failures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from services.history import StoreRejected, StoreUnavailable, store_for_url
from services.history.postgres import SMALL_BATCH, PostgresHistoryStore
from tests.conftest import POSTGRES_DSN, free_port
from tests.integration.history.conftest import in_thread, raw_sql
from tests.integration.history.factory import at, brewslm, pulse, raw_envelope

pytestmark = pytest.mark.integration


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[PostgresHistoryStore]:
    store = PostgresHistoryStore(pg_url, months_ahead=3)
    await store.open()
    await store.migrate()
    yield store
    await store.close()


async def partitions(url: str) -> dict[str, int]:
    rows = await raw_sql(
        url,
        "SELECT c.relname, (SELECT count(*) FROM history h WHERE h.tableoid = c.oid) "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'history'::regclass",
    )
    return {r[0]: r[1] for r in rows}


def month_name(day: date | datetime) -> str:
    return f"history_p{day:%Y%m}"


async def test_months_ahead_exist_and_a_batch_creates_the_months_it_touches(
    pg_store: PostgresHistoryStore, pg_url: str
) -> None:
    # Given a freshly migrated history: this month and the 3 ahead exist already
    today = datetime.now(UTC).date().replace(day=1)
    ahead = [today]
    for _ in range(3):
        ahead.append((ahead[-1] + timedelta(days=32)).replace(day=1))
    before = await partitions(pg_url)
    assert {month_name(m) for m in ahead} | {"history_default"} == set(before)
    # When a batch carries events of 1999 and 2031 (back-dated and future)
    batch = [
        brewslm("exp-1", datetime(1999, 5, 3, tzinfo=UTC), event_id="a"),
        pulse("exp-1", datetime(2031, 1, 31, 23, 59, 59, tzinfo=UTC), event_id="b"),
        pulse("exp-1", datetime(2031, 2, 1, tzinfo=UTC), event_id="c"),
    ]
    assert await pg_store.insert_batch(batch) == 3
    # Then each landed in its own month's partition, none in the default one
    after = await partitions(pg_url)
    assert after["history_p199905"] == 1
    assert after["history_p203101"] == 1 and after["history_p203102"] == 1
    assert after["history_default"] == 0


async def test_prune_drops_whole_old_partitions_and_keeps_the_rest(
    pg_store: PostgresHistoryStore, pg_url: str
) -> None:
    # Given events in three old months and in the current one
    now = datetime.now(UTC)
    old_months = [datetime(2020, m, 15, tzinfo=UTC) for m in (1, 2, 3)]
    await pg_store.insert_batch(
        [brewslm("exp-2", t, event_id=f"old{t.month}") for t in old_months]
        + [brewslm("exp-2", now - timedelta(hours=1), event_id="now")]
    )
    # When history older than 90 days is pruned
    result = await pg_store.prune(timedelta(days=90))
    # Then the old months' partitions are detached and dropped, the rest untouched
    assert sorted(result.partitions_dropped) == [
        "history_p202001",
        "history_p202002",
        "history_p202003",
    ]
    left = await partitions(pg_url)
    assert not any(name.startswith("history_p2020") for name in left)
    assert month_name(now) in left and "history_default" in left
    assert [r.event_id for r in (await pg_store.run_timeline("exp-2")).rows] == ["now"]
    # And no dropped table survives detached
    tables = await raw_sql(
        pg_url, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'history_p2020%'"
    )
    assert tables == []


async def test_a_row_postgres_refuses_is_rejected_not_retried(
    pg_store: PostgresHistoryStore,
) -> None:
    # Given a hand-made envelope whose stage holds a NUL (free text is escaped, stage is not:
    # it is a taxonomy value, so a NUL there is not an event of the contract)
    poison = raw_envelope(
        {"project_id": 7, "run_id": "exp-3", "stage": "train\x00ing", "severity": "info",
         "ts": at(0).isoformat()},
        event_id="nul-stage",
    )  # fmt: skip
    # When it is inserted, Then the store reports a data error (retrying cannot help)
    with pytest.raises(StoreRejected, match="22021"):
        await pg_store.insert_batch([poison])


async def test_no_server_means_unavailable() -> None:
    # Given a URL where nothing listens
    store = store_for_url(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    await store.open()  # lazy: no connection yet
    # When it is used, Then it reports unavailability (the persister retries that)
    assert await store.ping() is False
    with pytest.raises(StoreUnavailable):
        await store.insert_batch([brewslm("exp-4", at(0))])
    await store.close()


@pytest.fixture
def app_role() -> Iterator[str]:
    """A NOLOGIN role of its own (the service role), dropped afterwards."""
    role = f"hist_app_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    in_thread(lambda: run(f'CREATE ROLE "{role}" NOLOGIN'))
    yield role
    in_thread(lambda: run(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"'))


async def test_the_service_role_may_only_insert_and_select(
    pg_store: PostgresHistoryStore, pg_url: str, app_role: str
) -> None:
    # Given the least-privilege grants for the service role
    await pg_store.grant_app_role(app_role)
    await pg_store.insert_batch([brewslm("exp-5", at(0), event_id="by-owner")])
    # When the service works as that role (SET ROLE at connect)
    app = store_for_url(f"{pg_url}&role={app_role}")
    await app.open()
    try:
        assert await app.migrate() == []  # nothing to apply, and no DDL needed
        # Then it can insert (even into a month that needs a new partition) and read
        assert (
            await app.insert_batch(
                [pulse("exp-5", datetime(2011, 1, 1, tzinfo=UTC), event_id="by-app")]
            )
            == 1
        )
        assert {r.event_id for r in (await app.run_timeline("exp-5")).rows} == {
            "by-owner",
            "by-app",
        }
        # But it cannot prune (only the owner drops partitions)
        with pytest.raises(StoreUnavailable, match="42501"):
            await app.prune(timedelta(days=1))
    finally:
        await app.close()
    # And UPDATE, DELETE, TRUNCATE and DDL are refused by its privileges
    as_app = f"{pg_url}&role={app_role}"
    for statement in (
        "UPDATE history SET severity = 'x'",
        "DELETE FROM history",
        "TRUNCATE history",
        f"TRUNCATE {month_name(at(0))}",
        "DROP TABLE history",
        "CREATE TABLE sneaky (x int)",
        "ALTER TABLE history DISABLE TRIGGER USER",
    ):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await raw_sql(as_app, statement)
        assert refused.value.sqlstate == "42501", statement
    assert await pg_store.count() == 2


@pytest.mark.parametrize("size", [SMALL_BATCH, SMALL_BATCH + 1], ids=["one-statement", "staged"])
async def test_both_insert_paths_store_the_same_rows_once(
    pg_store: PostgresHistoryStore, size: int
) -> None:
    # Given a batch at the size of each insert path: both dialects, NUL and unicode text, JSON
    batch = [
        brewslm("exp-9", at(i), event_id=f"b{i}", summary="a\x00b é🧪", payload={"n": i, "d": [1]})
        if i % 2 else pulse("exp-9", at(i), event_id=f"p{i}", details={"k": "\x00"})
        for i in range(size)
    ]  # fmt: skip
    # When it is inserted twice (a redelivery)
    assert await pg_store.insert_batch(batch) == size
    assert await pg_store.insert_batch(batch) == 0
    # Then each event is stored once, its text and JSON as they were sent
    page = await pg_store.run_timeline("exp-9", limit=size + 10)
    assert [r.event_id for r in page.rows] == [e.event_id for e in batch]
    sent = {e.event_id: e.event for e in batch}
    for row in page.rows:
        event = sent[row.event_id]
        if row.dialect == "brewslm":
            assert row.summary == event["summary"] and row.payload == event["payload"]
        else:
            assert row.details == event["details"]


async def test_a_batch_holding_stored_events_falls_back_to_the_staged_insert(
    pg_store: PostgresHistoryStore, pg_url: str
) -> None:
    # Given 200 stored events (a batch above the small-batch size goes straight in by COPY)
    size = SMALL_BATCH * 2 + 8
    first = [brewslm("exp-c", at(i), event_id=f"c{i}") for i in range(size)]
    assert await pg_store.insert_batch(first) == size
    # When a batch holds half of them again (a redelivery) and half new events
    mixed = first[size // 2 :] + [brewslm("exp-c", at(size + i), event_id=f"n{i}")
                                  for i in range(size // 2)]  # fmt: skip
    # Then the direct COPY is refused, the staged insert stores only the new half
    assert await pg_store.insert_batch(mixed) == size // 2
    # and the next batch (new events only) takes the staged path once, then COPY again
    for round_ in range(2):
        fresh = [brewslm("exp-c", at(2 * size + round_ * size + i), event_id=f"f{round_}-{i}")
                 for i in range(size)]  # fmt: skip
        assert await pg_store.insert_batch(fresh) == size
    rows = await raw_sql(pg_url, "SELECT count(*), count(DISTINCT event_id) FROM history")
    assert tuple(rows[0]) == (size * 3 + size // 2, size * 3 + size // 2)
    # and nothing was written twice or lost: ids are unique, every event once
    ids = await raw_sql(pg_url, "SELECT count(DISTINCT id) FROM history")
    assert ids[0][0] == size * 3 + size // 2


async def test_copy_straight_into_the_history_is_refused_by_a_stored_event(pg_url: str) -> None:
    # Given a stored event
    from services.history.postgres import copy_direct, escaped_records
    from services.history.records import records_of

    store = PostgresHistoryStore(pg_url)
    await store.open()
    await store.migrate()
    event = brewslm("exp-d", at(0), event_id="d0")
    assert await store.insert_batch([event]) == 1
    await store.close()
    # When the direct COPY meets it again, inside a transaction
    conn = await asyncpg.connect(
        POSTGRES_DSN, server_settings={"search_path": pg_url.split("=")[-1]}
    )
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            async with conn.transaction():
                await copy_direct(conn, escaped_records(records_of([event])))
        # Then nothing was written
        assert await conn.fetchval("SELECT count(*) FROM history") == 1
    finally:
        await conn.close()
