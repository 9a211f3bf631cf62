"""API fixtures: the app with its lifespan run, an HTTP client on it, and ways to seed data.

Everything is real: the machine's Redis (the test's own namespace) and a SQLite history in the
test's tmp_path. The client is httpx on the ASGI app (no socket), so each test is fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aredis
from pydantic import SecretStr

from services.history import HistoryStore, open_store
from shared.models import CoachChange, CoachDocument, ValidEnvelope
from shared.settings import Settings
from tests.integration.api.helpers import started_app


@pytest.fixture
async def make_client(
    settings: Settings, sync_client: redis.Redis
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """Factory: an HTTP client on a started app, with settings overrides (token, limits...)."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            if "api_token" in overrides and isinstance(overrides["api_token"], str):
                overrides["api_token"] = SecretStr(overrides["api_token"])
            started = started_app(settings.model_copy(update=overrides))
            _, client = await stack.enter_async_context(started)
            return client

        yield make


@pytest.fixture
async def http(make_client: Callable[..., Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    """An HTTP client on the app with the test settings (no token)."""
    return await make_client()


@pytest.fixture
async def history(settings: Settings, http: httpx.AsyncClient) -> AsyncIterator[HistoryStore]:
    """A second connection to the app's history database (the app migrated it), to seed rows."""
    store = open_store(settings)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def seed_history(history: HistoryStore) -> Callable[..., Awaitable[int]]:
    """Insert envelopes into the history the way the persister does."""

    async def seed(*envelopes: ValidEnvelope) -> int:
        return await history.insert_batch(list(envelopes))

    return seed


@pytest.fixture
def seed_coach(
    async_client: aredis.Redis, settings: Settings
) -> Callable[[CoachDocument], Awaitable[None]]:
    """Put a coach document in the cache under the shared key layout (`Names.coach_key`) and
    announce it on the change channel, atomically, as the coach's write script does."""

    async def put(doc: CoachDocument) -> None:
        names = settings.names
        change = CoachChange(project_id=doc.project_id, stage=doc.stage, version=doc.version)
        async with async_client.pipeline(transaction=True) as pipe:
            pipe.set(names.coach_key(doc.project_id, doc.stage), doc.model_dump_json())
            pipe.publish(names.coach_changes, change.model_dump_json())
            pipe.sadd(names.coach_projects, str(doc.project_id))
            await pipe.execute()

    return put
