"""End-to-end fixtures: the whole system as real processes, on SQLite or on a PostgreSQL schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.conftest import POSTGRES_DSN, REDIS_URL, free_port
from tests.integration.e2e.helpers import System, system_env


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL on a schema of its own (``?search_path=``), dropped afterwards."""
    schema = f"e2e_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(run("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:  # fail loudly: never skip
        pytest.fail(f"e2e tests need PostgreSQL at {POSTGRES_DSN}: {exc}")
    sep = "&" if "?" in POSTGRES_DSN else "?"
    yield f"{POSTGRES_DSN}{sep}search_path={schema}"
    asyncio.run(run(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def start_system(
    namespace: str, tmp_path: Path, sync_client: redis.Redis
) -> Iterator[Callable[..., System]]:
    """Factory: start `runbus run all --ensure-redis` for this test's namespace."""
    systems: list[System] = []

    def start(database_url: str, *args: str, redis_url: str = REDIS_URL) -> System:
        workdir = tmp_path / f"system-{len(systems)}"
        workdir.mkdir()
        env = system_env(namespace, redis_url, database_url, free_port(), workdir)
        system = System(env, workdir, *args)
        systems.append(system)
        system.start()
        return system

    yield start
    for system in systems:
        system.close()
