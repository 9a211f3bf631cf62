"""Backpressure made visible: a stalled stage's lag in entries and in seconds in status,
metrics and health, and how long until Redis is full at the current rate."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
import redis
import redis.asyncio as aredis

from services.ops.status import bus_status
from shared.settings import Settings
from tests.conftest import RedisServer
from tests.integration.api.conftest import make_client  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def back_dated(client: redis.Redis, stream: str, count: int, age_s: float) -> None:
    """`count` entries whose ids say they arrived `age_s` ago."""
    ms = int((time.time() - age_s) * 1000)
    for _ in range(count):
        client.xadd(stream, {"__data__": b"{}"}, id=f"{ms}-*")


def stalled(sync_client: redis.Redis, settings: Settings) -> None:
    """The valid stream holds 50 entries of 2 minutes ago: the coach read (and acknowledged)
    them, the persister never read them; 3 of them delivered to it and left pending."""
    valid = settings.names.valid
    for group in ("persister", "coach"):
        sync_client.xgroup_create(valid, group, id="0", mkstream=True)
    back_dated(sync_client, valid, 50, 120)
    read = sync_client.xreadgroup("coach", "c-1", {valid: ">"}, count=100)
    sync_client.xack(valid, "coach", *[i for i, _ in read[0][1]])  # type: ignore[index]
    sync_client.xreadgroup("persister", "p-1", {valid: ">"}, count=3)


async def test_a_stalled_stage_shows_its_lag_in_entries_and_seconds(
    sync_client: redis.Redis,
    async_client: aredis.Redis,
    settings: Settings,
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],  # noqa: F811
) -> None:
    stalled(sync_client, settings)
    status = await bus_status(async_client, settings.names)
    valid = next(s for s in status.streams if s.role == "valid")
    groups = {g.name: g for g in valid.groups}
    assert (groups["persister"].lag, groups["persister"].pending) == (47, 3)
    assert groups["persister"].lag_s is not None and 119 <= groups["persister"].lag_s < 200
    assert (groups["coach"].lag, groups["coach"].lag_s) == (0, 0.0)
    http = await make_client()
    metrics = (await http.get("/metrics")).text
    line = next(
        x
        for x in metrics.splitlines()
        if re.match(r'runbus_group_lag_seconds\{group="persister"', x)
    )
    assert 119 <= float(line.rsplit(" ", 1)[1]) < 200
    assert 'runbus_group_lag_seconds{group="coach",stream="valid"} 0.0' in metrics
    ready = (await http.get("/readyz")).json()
    assert ready["lag"] == 47 and 119 <= ready["lag_s"] < 200


async def test_status_tells_how_long_until_redis_is_full(
    redis_server: Callable[..., RedisServer], settings: Settings
) -> None:
    server = redis_server()
    admin = redis.Redis(port=server.port)
    admin.config_set("maxmemory", 64 * 1024 * 1024)
    admin.config_set("maxmemory-policy", "noeviction")
    client = aredis.Redis(port=server.port)
    stop = asyncio.Event()

    async def grow() -> None:  # about 1 MB/s of backlog
        while not stop.is_set():
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(100):
                    pipe.xadd(settings.names.events, {"__data__": b"x" * 500})
                await pipe.execute()
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(grow())
    try:
        status = await bus_status(client, settings.names, window_s=1.0)
    finally:
        stop.set()
        await writer
        await client.aclose()
        admin.close()
    memory = status.memory
    assert memory is not None and memory.max_bytes == 64 * 1024 * 1024 and not memory.full
    assert memory.growth_bytes_per_s is not None and memory.growth_bytes_per_s > 100_000
    assert memory.full_in_s is not None
    expected = (memory.max_bytes - memory.used_bytes) / memory.growth_bytes_per_s
    assert memory.full_in_s == pytest.approx(expected)
    assert 1 < memory.full_in_s < 3600
