"""History fixtures: a store on each backend, each test in its own SQLite file or PG schema."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from services.history import HistoryStore, store_for_url
from tests.conftest import POSTGRES_DSN

T = TypeVar("T")


def in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on its own loop in another thread (usable from sync fixtures)."""

    def runner() -> T:
        async def main() -> T:
            return await make()

        return asyncio.run(main())

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(runner).result()


def pg_schema_url(schema: str) -> str:
    """The test database URL selecting `schema`."""
    sep = "&" if "?" in POSTGRES_DSN else "?"
    return f"{POSTGRES_DSN}{sep}search_path={schema}"


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on a schema of its own, dropped afterwards."""
    schema = f"hist_{uuid.uuid4().hex[:12]}"

    async def ping() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        await conn.close()

    try:
        in_thread(ping)
    except (OSError, asyncpg.PostgresError) as exc:  # fail loudly: never skip a missing server
        pytest.fail(f"integration tests need PostgreSQL at {POSTGRES_DSN}: {exc}")
    yield pg_schema_url(schema)
    in_thread(lambda: _drop_schema(schema))


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(backend_url: str) -> AsyncIterator[HistoryStore]:
    """A migrated store on each backend."""
    history = store_for_url(backend_url)
    await history.open()
    await history.migrate()
    yield history
    await history.close()


async def raw_sql(url: str, sql: str, *args: Any) -> Any:
    """Run SQL straight on the database behind a store URL (bypassing the store)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    pg = await asyncpg.connect(url)
    try:
        return await pg.fetch(sql, *args)
    finally:
        await pg.close()


#: What a backend raises when it refuses a statement.
REFUSALS = (sqlite3.DatabaseError, asyncpg.PostgresError)
