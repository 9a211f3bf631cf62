"""End-to-end fixtures: the whole system as real processes, on SQLite or on a PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL, free_port, postgres_schema
from tests.integration.e2e.helpers import System, system_env


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL on a schema of its own (``?search_path=``), dropped afterwards."""
    with postgres_schema(f"e2e_{uuid.uuid4().hex[:12]}", "e2e tests") as url:
        yield url


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
