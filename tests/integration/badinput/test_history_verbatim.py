"""Hostile text goes through validator and persister into the history unchanged, on SQLite and
PostgreSQL: SQL and shell metacharacters, control characters, NUL, bidirectional overrides,
emoji and combining marks in run ids, summaries, actors, payload keys and values, Pulse
messages and details. Nothing is interpreted (the queries are parameterized), nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis

from services.history import HistoryRow, HistoryStore, open_store
from services.persister.app import run_persister
from services.validator.app import run_validator
from shared.consumer import ATTEMPTS_EXCEEDED
from shared.settings import Settings
from shared.wire import DATA_FIELD, parse_dead_letter
from tests.conftest import POSTGRES_DSN
from tests.integration.badinput.conftest import rows
from tests.unit.badinput.corpus import NASTY, event, pulse

pytestmark = pytest.mark.integration
#: Nasty strings that may be an id (1..256 characters); the others go in free text only.
IDS = [s for s in NASTY if 0 < len(s) <= 256]


def hostile_events() -> list[dict[str, Any]]:
    """One BrewSLM and one Pulse event per nasty string, each with its own event id."""
    docs: list[dict[str, Any]] = []
    for i, text in enumerate(NASTY):
        run = IDS[i % len(IDS)]
        payload = {text: text, "list": [text, {text: [text]}], "n": i}
        docs.append(
            event(
                event_id=f"bw-{i}",
                run_id=run,
                parent_run_id=run,
                actor=run,
                summary=text,
                payload=payload,
            )
        )
        docs.append(pulse(event_id=f"pl-{i}", run_id=run, message=text, details=payload))
    return docs


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a schema of its own, dropped afterwards."""
    schema = f"badinput_{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in POSTGRES_DSN else "?"
    yield f"{POSTGRES_DSN}{sep}search_path={schema}"

    async def drop() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(settings: Settings, database_url: str) -> AsyncIterator[HistoryStore]:
    """The history store the persister writes (migrated here first, so reads can start)."""
    history = open_store(settings.model_copy(update={"database_url": database_url}))
    await history.open()
    await history.migrate()
    yield history
    await history.close()


@contextlib.asynccontextmanager
async def pipeline(settings: Settings) -> AsyncIterator[None]:
    """The validator and the persister, running; stopped (and awaited) even if the test fails."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_validator(settings, stop)),
        asyncio.create_task(run_persister(settings, stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_hostile_text_is_stored_verbatim_in_the_history(
    settings: Settings, sync_client: redis.Redis, store: HistoryStore, database_url: str
) -> None:
    # Given the validator and the persister running on this database
    live = settings.model_copy(update={"database_url": database_url, "block_ms": 50})
    docs = hostile_events()

    async def stored() -> bool:
        return await store.count() == len(docs)

    async with pipeline(live):
        # When producers send an event per nasty string, in both dialects, twice (a retry)
        send(sync_client, live, [orjson.dumps(doc) for doc in docs * 2])
        await until(stored)
    # Then every event is in the history once, nothing was dead-lettered ...
    assert sync_client.xlen(live.names.dead) == 0
    rows = {row.event_id: row async for row in store.iter_events()}
    assert len(rows) == len(docs)
    # ... and every text came back exactly as it was sent
    for doc in docs:
        assert_verbatim(doc, rows[doc["event_id"]])


def send(client: redis.Redis, settings: Settings, bodies: list[bytes]) -> None:
    with client.pipeline(transaction=False) as pipe:
        for data in bodies:
            pipe.xadd(settings.names.events, {DATA_FIELD: data})
        pipe.execute()


def assert_verbatim(doc: dict[str, Any], row: HistoryRow) -> None:
    """Each text field of the sent document equals the stored one."""
    fields = ("run_id", "parent_run_id", "actor", "summary", "payload", "message", "details")
    for name in fields:
        if name in doc:
            assert getattr(row, name) == doc[name], f"{name} of {doc['event_id']} changed"


async def test_project_ids_at_the_edge_of_64_bits_are_stored_or_dead_lettered(
    settings: Settings, sync_client: redis.Redis, store: HistoryStore, database_url: str
) -> None:
    # Given project ids at and past the largest 64-bit signed integer (the databases store
    # BIGINT, so the schema stops there)
    live = settings.model_copy(update={"database_url": database_url, "block_ms": 50})
    ids = [2**63 - 1, 2**63, 2**64 - 1]

    async def settled() -> bool:
        return await store.count() + int(sync_client.xlen(live.names.dead)) == len(ids)

    async with pipeline(live):
        # When they are sent
        bodies = [orjson.dumps(event(project_id=p, event_id=f"big-{n}")) for n, p in enumerate(ids)]
        send(sync_client, live, bodies)
        await until(settled)
    # Then the largest BIGINT is stored, and the others are dead-lettered with a code
    # (never by exhausting their deliveries: the persister must not crash on them)
    assert [row.project_id async for row in store.iter_events()] == [2**63 - 1]
    letters = [parse_dead_letter(f) for _, f in rows(sync_client, live.names.dead)]
    assert len(letters) == 2
    assert all(ATTEMPTS_EXCEEDED not in letter.errors for letter in letters), letters
