"""Story: the coach's Redis dies mid-burst (SIGKILL) and comes back from its AOF; the coach
reconnects, redelivered entries change nothing twice, and the cache ends exactly right."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aredis

from shared.settings import Settings
from tests.conftest import RedisServer
from tests.integration.coach.conftest import RunningCoach, eventually, publish
from tests.integration.coach.test_worker import cached_canonical, expected_suggestions, mixed_events

pytestmark = pytest.mark.integration


async def test_redis_killed_mid_burst_loses_and_doubles_nothing(
    settings: Settings,
    redis_server: Callable[..., RedisServer],
    start_coach: Callable[..., RunningCoach],
) -> None:
    # given a private Redis that fsyncs every write, with 3,000 events waiting
    server = redis_server(appendonly=True)
    config = settings.model_copy(update={"redis_url": server.url, "batch_size": 100})
    client = aredis.Redis.from_url(server.url)
    await client.config_set("appendfsync", "always")
    events = mixed_events(3000, projects=(5, 6))
    await publish(client, config, events)
    # when the coach is part-way through and the server is killed, then restarted
    coach = start_coach("coach-outage", config)
    await coach.handled(600)
    at_kill = coach.stats.entries
    server.stop()  # SIGKILL; synchronous, so the worker cannot finish the burst meanwhile
    server.start()
    assert at_kill < len(events)

    async def complete() -> bool:
        try:
            groups = {g["name"]: g for g in await client.xinfo_groups(config.names.valid)}
            done = groups[b"coach"]["lag"] == 0 and groups[b"coach"]["pending"] == 0
            return bool(done)
        except (OSError, aredis.ConnectionError, KeyError):
            return False

    await eventually(complete, timeout=60, what="coach caught up after the restart")
    try:
        # then the cache is exactly what the rules say about all the events
        for project in (5, 6):
            expected = expected_suggestions(events, project)
            assert await cached_canonical(client, config, project) == expected
        # and no entry was given up on
        assert await client.xlen(config.names.dead) == 0
        assert coach.stats.entries >= len(events)
    finally:
        await coach.finish()
        await client.aclose()
