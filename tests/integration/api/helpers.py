"""Helpers for API stories."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI

from services.api.app import create_app
from shared.settings import Settings


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` (without blocking the loop) until true; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def started_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on `settings` with its lifespan run, and an HTTP client on it (no socket; an
    error in the app is its 500, not the test's exception); both closed on exit."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://runbus.test") as http:
            yield app, http
