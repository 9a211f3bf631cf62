"""What the API holds while it runs: settings, one Redis client, the history store, the live hub.

The lifespan opens them; a database that is down at start does not stop the API (``/readyz``
says 503 and reads answer 503 until it is back: the store is reopened on demand).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import redis.asyncio as aredis
from fastapi import Depends, Request

from services.api.coalesce import CoalescedReads
from services.api.errors import ApiError
from services.api.live import LiveHub
from services.history import HistoryStore, StoreUnavailable, open_store
from shared.archive import ArchivedLetter, ArchiveRow, ArchiveSize, DeadLetterArchive, IdKey
from shared.connections import async_redis
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("runbus.api")


@dataclass
class ApiState:
    """The API's open resources."""

    settings: Settings
    redis: aredis.Redis
    store: HistoryStore
    live: LiveHub
    reads: CoalescedReads
    """`redis`'s ``GET``/``GETRANGE`` with concurrent reads batched (the coach polls)."""
    store_ready: bool = False
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(cls, settings: Settings) -> ApiState:
        """Open Redis, the history store (a failing store is retried on first use) and the
        live hub (its sampler starts now)."""
        client = async_redis(settings)
        hub = LiveHub(settings, client)
        state = cls(settings, client, open_store(settings), hub, CoalescedReads(client))
        state.live.start()
        try:
            await state.history()
        except StoreUnavailable as exc:
            log.warning("history_store_unavailable_at_start", error=str(exc))
        return state

    async def history(self) -> HistoryStore:
        """The opened (and, when configured, migrated) store; `StoreUnavailable` if it is not."""
        if self.store_ready:
            return self.store
        async with self._lock:
            if not self.store_ready:
                await self.store.open()
                if self.settings.migrate_on_start:
                    await self.store.migrate()
                self.store_ready = True
        return self.store

    @property
    def archive(self) -> DeadLetterArchive:
        """The dead-letter archive, opened on first use: a lookup the stream answers never
        waits for (or fails on) the database."""
        return _LazyArchive(self)

    async def close(self) -> None:
        """Release everything."""
        await self.live.close()
        await self.store.close()
        await self.redis.aclose()


@dataclass(frozen=True)
class _LazyArchive:
    """The history store as the dead-letter archive, opened (`ApiState.history`) per call."""

    state: ApiState

    async def archive_dead_letters(self, rows: Sequence[ArchiveRow]) -> int:
        return await (await self.state.history()).archive_dead_letters(rows)

    async def archived_dead_letters(self, keys: Sequence[tuple[str, str]]) -> list[ArchivedLetter]:
        return await (await self.state.history()).archived_dead_letters(keys)

    async def archived_after(
        self, stream: str, after: IdKey, until: IdKey, limit: int
    ) -> list[ArchivedLetter]:
        return await (await self.state.history()).archived_after(stream, after, until, limit)

    async def claim_redrives(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return await (await self.state.history()).claim_redrives(keys)

    async def release_redrives(self, keys: Sequence[tuple[str, str]]) -> None:
        await (await self.state.history()).release_redrives(keys)

    async def archive_size(self) -> ArchiveSize:
        return await (await self.state.history()).archive_size()


# The dependencies are coroutines: FastAPI runs a plain function in a worker thread, and two
# thread hops per request cost more than a coach read itself.


async def api_state(request: Request) -> ApiState:
    """The running app's state (a dependency)."""
    state: ApiState = request.app.state.api
    return state


def app_settings(request: Request) -> Settings:
    """The app's settings (a dependency; available before the lifespan ran)."""
    settings: Settings = request.app.state.settings
    return settings


State = Annotated[ApiState, Depends(api_state)]


def token_accepted(authorization: str, settings: Settings) -> bool:
    """True when an ``Authorization`` header value carries the bearer token (or none is set)."""
    token = settings.api_token
    if token is None or not token.get_secret_value():  # unset or empty: no auth
        return True
    scheme, _, given = authorization.partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)


def _check_token(request: Request, settings: Settings) -> None:
    if not token_accepted(request.headers.get("authorization", ""), settings):
        raise ApiError(
            401,
            "unauthorized",
            "a valid 'Authorization: Bearer <token>' header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_write(request: Request) -> None:
    """Writes need the bearer token when ``RUNBUS_API_TOKEN`` is set."""
    _check_token(request, app_settings(request))


async def require_read(request: Request) -> None:
    """Reads need it too when ``RUNBUS_API_READ_TOKEN_REQUIRED`` is true."""
    settings = app_settings(request)
    if settings.api_read_token_required:
        _check_token(request, settings)


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
