"""Fixtures of the ops integration tests: dead letters on the real Redis, and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import redis
from typer.testing import CliRunner, Result

from services.cli.main import app
from shared.settings import Settings
from shared.wire import Fields
from tests.conftest import REDIS_URL
from tests.unit.ops.builders import dead_fields

AddDead = Callable[..., str]


def xadd(client: redis.Redis, stream: str, fields: Fields) -> str:
    """XADD; returns the new id as text."""
    new_id: Any = client.xadd(stream, fields)  # type: ignore[arg-type]
    return str(new_id.decode())


def entries(client: redis.Redis, stream: str) -> list[tuple[str, Fields]]:
    """Every entry of a stream, ids as text."""
    reply: Any = client.xrange(stream)
    return [(entry_id.decode(), fields) for entry_id, fields in reply]


Cli = Callable[..., Result]


@pytest.fixture
def add_dead(sync_client: redis.Redis, settings: Settings) -> AddDead:
    """Append a dead letter to the namespace's dead stream; returns its id.

    `at` back-dates it (its id carries that time), so add older ones first.
    """

    def add(
        errors: list[str], body: bytes | None = None, *, at: datetime | None = None, **kwargs: Any
    ) -> str:
        kwargs.setdefault("source_stream", settings.names.events)
        entry_id = f"{int(at.timestamp() * 1000)}-*" if at is not None else "*"
        fields = dead_fields(errors, body, **kwargs)
        new_id: Any = sync_client.xadd(settings.names.dead, fields, id=entry_id)  # type: ignore[arg-type]
        return str(new_id.decode())

    return add


@pytest.fixture
def cli(settings: Settings) -> Cli:
    """Run `runbus ...` in-process against this test's namespace."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None, operator: str = "test-op") -> Result:
        env = {
            "RUNBUS_REDIS_URL": REDIS_URL,
            "RUNBUS_NAMESPACE": settings.namespace,
            "RUNBUS_OPERATOR": operator,
            "RUNBUS_DATABASE_URL": settings.database_url,
        }
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return run
