"""Least privilege on both sides at once: Redis ACL users and the PostgreSQL service role.

Story: the validator and the persister run as their Redis users, and the persister writes the
history as the INSERT/SELECT-only PostgreSQL role (``runbus db grant``). Hostile text and
timestamps at the edges of the accepted window (which need new monthly partitions, created
through the SECURITY DEFINER function) are stored verbatim; nothing needs more privilege.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import orjson
import pytest

from services.history import store_for_url
from services.history.postgres import PostgresHistoryStore
from services.persister.app import run_persister
from services.security.acl import ADMIN
from services.validator.app import run_validator
from shared.names import Names
from shared.wire import DATA_FIELD
from tests.conftest import POSTGRES_DSN
from tests.integration.security.conftest import AclServer
from tests.unit.badinput.corpus import NASTY, event

pytestmark = pytest.mark.integration
N = Names("runbus")
EDGES = ("1970-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z", "2024-02-29T12:00:00+14:00")


async def _sql(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def schema_and_role() -> Iterator[tuple[str, str]]:
    """A schema and a NOLOGIN service role of their own, dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    schema, role = f"sec_{tag}", f"sec_app_{tag}"
    asyncio.run(_sql(f'CREATE ROLE "{role}" NOLOGIN'))
    yield schema, role
    asyncio.run(_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    asyncio.run(_sql(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"'))


@pytest.fixture
async def owner_store(schema_and_role: tuple[str, str]) -> AsyncIterator[PostgresHistoryStore]:
    """The history migrated by its owner, with the service role granted."""
    schema, role = schema_and_role
    sep = "&" if "?" in POSTGRES_DSN else "?"
    store = store_for_url(f"{POSTGRES_DSN}{sep}search_path={schema}")
    assert isinstance(store, PostgresHistoryStore)
    await store.open()
    await store.migrate()
    await store.grant_app_role(role)
    yield store
    await store.close()


async def test_pipeline_stores_hostile_events_with_least_privilege_everywhere(
    acl_server: AclServer, owner_store: PostgresHistoryStore, schema_and_role: tuple[str, str]
) -> None:
    # Given the validator as Redis user `validator`, the persister as Redis user `persister`
    # writing the history as the INSERT/SELECT-only PostgreSQL role
    _, role = schema_and_role
    as_service = f"{owner_store.url}&role={role}"
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_validator(acl_server.settings("validator"), stop)),
        asyncio.create_task(
            run_persister(acl_server.settings("persister", database_url=as_service), stop)
        ),
    ]
    # When a producer publishes hostile text at the edges of the time window
    docs = [
        event(event_id=f"lp-{i}", run_id=text or "empty", summary=text, payload={text: text},
              ts=EDGES[i % len(EDGES)])
        for i, text in enumerate(NASTY)
    ]  # fmt: skip
    with acl_server.client("producer").pipeline(transaction=False) as pipe:
        for doc in docs:
            pipe.xadd(N.events, {DATA_FIELD: orjson.dumps(doc)})
        pipe.execute()
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while await owner_store.count() < len(docs):
            assert asyncio.get_running_loop().time() < deadline, "not all events were stored"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    # Then every event is in the history, verbatim, and nothing was dead-lettered
    rows = {row.event_id: row async for row in owner_store.iter_events()}
    for doc in docs:
        row = rows[doc["event_id"]]
        assert (row.run_id, row.summary, row.payload) == (
            doc["run_id"],
            doc["summary"],
            doc["payload"],
        )
    assert acl_server.client(ADMIN).xlen(N.dead) == 0
