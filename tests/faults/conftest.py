"""Fixtures of the fault tests: the system's processes, private servers, sizes, the report.

Sizes: the short variants (a few kills, a 5 s database outage) run in ``make test``; with
``RUNBUS_FAULTS_FULL=1`` (``make test-faults``) the same tests run their full sizes (20 kills
per service, a 30 s outage, ...).

The private PostgreSQL cluster is the history tests' `postgres_server` fixture, imported here so
pytest offers it to these tests too.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import REDIS_URL, postgres_schema
from tests.faults.system import PrivateRedis, System, base_env
from tests.integration.history.conftest import (  # reused, not copied
    PostgresServer,
    postgres_server,
)

__all__ = ["PostgresServer", "postgres_server"]

FULL = os.environ.get("RUNBUS_FAULTS_FULL", "") not in ("", "0")


@dataclass(frozen=True)
class Sizes:
    """How hard each fault is pushed."""

    variant: str
    kills_per_service: int
    redis_restarts: int
    redis_down_s: float
    postgres_down_s: float
    rate: float


SHORT = Sizes("short", kills_per_service=3, redis_restarts=1, redis_down_s=2.0,
              postgres_down_s=5.0, rate=300.0)  # fmt: skip
LONG = Sizes("full", kills_per_service=20, redis_restarts=3, redis_down_s=10.0,
             postgres_down_s=30.0, rate=500.0)  # fmt: skip


@pytest.fixture
def sizes() -> Sizes:
    """The sizes of this run (RUNBUS_FAULTS_FULL=1: the full ones)."""
    return LONG if FULL else SHORT


@pytest.fixture
def tag() -> str:
    """A token unique to this test: namespace and event-id prefix."""
    return f"f{uuid.uuid4().hex[:10]}"


MakeSystem = Callable[..., System]


@pytest.fixture
def make_system(tag: str, tmp_path: Path) -> Iterator[MakeSystem]:
    """Factory of `System`s on namespace `tag`; every process is killed and every key removed.

    ``make_system(database_url, redis_url=..., **env)``: env entries override `base_env`.
    """
    systems: list[System] = []

    def make(database_url: str, redis_url: str = REDIS_URL, **env: str) -> System:
        _require_redis(redis_url)
        system = System(tmp_path / "logs", base_env(redis_url, tag, database_url, **env))
        systems.append(system)
        return system

    yield make
    for system in systems:
        system.kill_all()
        with contextlib.suppress(redis.ConnectionError):  # a private server took its keys
            system.delete_keys(tag, f"{tag}rb")
        system.client.close()


def _require_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # fail loudly: never skip a missing server
        pytest.fail(f"fault tests need Redis at {url}: {exc}")
    finally:
        client.close()


@pytest.fixture
def pg_url(tag: str) -> Iterator[str]:
    """A schema of its own on the machine's PostgreSQL (dropped afterwards)."""
    with postgres_schema(f"faults_{tag}", "fault tests") as url:
        yield url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started redis-server of this test's own (AOF, appendfsync always)."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.crash()
