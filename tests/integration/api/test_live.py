"""The live hub against a real Redis: what the real writers write reaches every subscriber (and
the version map), a Redis restart yields a resync and the loops recover, and 50 subscribers
cost Redis what 1 does.

Outage and command-count tests run on private redis-servers (`redis_server`), the others in the
test's own namespace on the machine's Redis. Every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aredis

from services.api.fanout import Resync, Subscription
from services.api.live import TOPICS, LiveHub
from services.coach.io import CoachStore, StageResult
from services.validator.app import run_validator
from shared.connections import async_redis
from shared.models import CoachChange, NavigateAction, Suggestion
from shared.settings import Settings
from shared.wire import as_text
from tests.conftest import RedisServer, free_port, wait_for
from tests.integration.validator.helpers import dumps, good_event
from tests.live_api import _api_env
from tests.unit.ops.builders import dead_fields

pytestmark = pytest.mark.integration
NOW = datetime(2026, 5, 1, tzinfo=UTC)
#: No second sample during a test: the sampler's one round at start is all it reads.
QUIET = 3600.0


async def until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    """Poll `predicate` until true; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


async def next_of(sub: Subscription[Any], timeout: float = 15.0) -> Any:
    return await asyncio.wait_for(anext(sub), timeout)


async def next_matching(
    sub: Subscription[Any], wanted: Callable[[Any], bool], timeout: float = 30.0
) -> Any:
    """The first item `wanted` accepts (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        item = await next_of(sub, max(0.01, deadline - time.monotonic()))
        if wanted(item):
            return item


@pytest.fixture
async def open_hub() -> AsyncIterator[Callable[[Settings, aredis.Redis], LiveHub]]:
    """Factory: a started hub; every one is closed at the end of the test."""
    hubs: list[LiveHub] = []

    def make(settings: Settings, client: aredis.Redis) -> LiveHub:
        hub = LiveHub(settings, client)
        hub.start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        await hub.close()


def quiet(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(update={"ui_sample_s": QUIET, **update})


async def write_change(client: aredis.Redis, settings: Settings, project: int, title: str) -> int:
    """A cache change through the coach's own write path; returns the new version."""
    suggestion = Suggestion(
        severity="warning", title=title, body="Because.",
        action=NavigateAction(label="Go", params={"target": "x"}),
    )  # fmt: skip
    result = StageResult(project_id=project, stage="data", rev=1, suggestions=[suggestion])
    written = await CoachStore(client, settings.names).write(result, taxonomy_version="t", now=NOW)
    assert written.outcome == "written"
    return written.version


async def test_a_coach_change_reaches_the_subscribers_of_its_project(
    settings: Settings, async_client: aredis.Redis, open_hub: Any
) -> None:
    # given subscribers of project 7, of project 8 and of every project
    hub: LiveHub = open_hub(quiet(settings), async_client)
    mine, other, every = hub.coach(7), hub.coach(8), hub.coach()
    assert await hub.listening("coach", 10)
    # when the coach writes a changed document of project 7
    version = await write_change(async_client, settings, 7, "first")
    # then project 7's and the catch-all subscribers hear it, project 8's does not
    expected = CoachChange(project_id=7, stage="data", version=version)
    assert await next_of(mine) == expected
    assert await next_of(every) == expected
    assert other.queued == 0  # publishing hands every subscriber its copy at once
    assert hub.subscribers()["coach"] == 3
    # and the version map heard it too
    assert hub.versions.version(7, "data") == version
    # and when every subscriber leaves, the one subscription stays: it feeds the version map
    for sub in (mine, other, every):
        sub.close()
    assert hub.subscribers()["coach"] == 0
    newer = await write_change(async_client, settings, 7, "second")
    await until(lambda: hub.versions.version(7, "data") == newer)
    reply: Any = await async_client.pubsub_numsub(settings.names.coach_changes)
    assert reply[0][1] == 1


async def test_a_dead_letter_of_the_real_validator_reaches_every_subscriber(
    settings: Settings, async_client: aredis.Redis, open_hub: Any
) -> None:
    # given five dead-letter subscribers and a running validator
    hub: LiveHub = open_hub(quiet(settings), async_client)
    subs = [hub.dead_letters() for _ in range(5)]
    assert await hub.listening("dead_letters", 10)
    stop = asyncio.Event()
    validator = asyncio.create_task(run_validator(settings, stop))
    try:
        # when an event with an unknown stage is published
        entry = await async_client.xadd(settings.names.events, {b"__data__": dumps(
            good_event(stage="nope"))})  # fmt: skip
        # then every subscriber gets its dead letter, with the reason
        for sub in subs:
            record: Any = await next_of(sub, 30)
            assert record.source_id == as_text(entry)
            assert record.errors == ["invalid_stage:nope"]
    finally:
        stop.set()
        await validator


async def test_the_sampler_keeps_a_ring_and_publishes_each_sample(
    settings: Settings, async_client: aredis.Redis, open_hub: Any
) -> None:
    hub: LiveHub = open_hub(settings.model_copy(update={"ui_sample_s": 0.05}), async_client)
    sub = hub.status()
    first: Any = await next_of(sub)
    second: Any = await next_of(sub)
    assert first.up and second.at > first.at
    assert second.status is not None and second.status.namespace == settings.namespace
    await until(lambda: len(hub.samples()) >= 3)
    ring = hub.samples()
    assert all(s.status is None for s in ring[:-1]) and ring[-1].status is not None
    assert [s.stage for s in ring[-1].stages] == ["validator", "persister", "coach"]
    assert {s.health for s in ring[-1].stages} == {"down"}  # no stage ever ran here
    assert ring == sorted(ring, key=lambda s: s.at)


async def test_a_redis_restart_yields_a_resync_and_every_loop_recovers(
    settings: Settings, redis_server: Callable[..., RedisServer], open_hub: Any
) -> None:
    # given a hub with every loop running on a private Redis
    server = redis_server()
    config = settings.model_copy(update={"redis_url": server.url, "ui_sample_s": 0.1})
    client = async_redis(config)
    try:
        hub: LiveHub = open_hub(config, client)
        coach, dead, status = hub.coach(), hub.dead_letters(), hub.status()
        assert await hub.listening("coach", 10) and await hub.listening("dead_letters", 10)
        # when Redis goes away (the sampler notices) and comes back
        server.stop()
        down: Any = await next_matching(status, lambda s: not isinstance(s, Resync) and not s.up)
        assert {s.health for s in down.stages} == {"unknown"}
        server.start()
        # then the coach subscribers are told to re-fetch
        assert await next_of(coach, 30) == Resync("reconnected")
        await next_matching(status, lambda s: not isinstance(s, Resync) and s.up)
        # and changes and dead letters flow again
        version = await write_change(client, config, 3, "after the restart")
        assert await next_of(coach, 30) == CoachChange(project_id=3, stage="data", version=version)
        entry = await client.xadd(config.names.dead, dead_fields(["invalid_stage:x"]))  # type: ignore[arg-type]
        record: Any = await next_of(dead, 30)
        assert record.id == as_text(entry)
    finally:
        await client.aclose()


def _commandstats(port: int) -> dict[str, int]:
    with redis.Redis(port=port) as client:
        stats: Any = client.info("commandstats")
    return {name: int(row["calls"]) for name, row in stats.items()}


async def _watched_workload(
    server: RedisServer, settings: Settings, open_hub: Any, subscribers: int, rounds: int
) -> dict[str, int]:
    """Commands Redis ran for a hub with `subscribers` pages on every topic, through `rounds`
    coach changes and dead letters (each delivered to every page before the next)."""
    config = quiet(settings, redis_url=server.url)
    client = async_redis(config)
    try:
        hub: LiveHub = open_hub(config, client)
        pages = [(hub.coach(), hub.dead_letters(), hub.status()) for _ in range(subscribers)]
        for topic in TOPICS:
            assert await hub.listening(topic, 10)
        reply: Any = await client.pubsub_numsub(config.names.coach_changes)
        assert reply[0][1] == 1  # one subscription, however many pages
        for n in range(rounds):
            await write_change(client, config, 1, f"change {n}")
            await client.xadd(config.names.dead, dead_fields(["invalid_stage:x"]))  # type: ignore[arg-type]
            for coach, dead, _status in pages:
                assert isinstance(await next_of(coach), CoachChange)
                assert not isinstance(await next_of(dead), Resync)
        # the follower's XREAD after the last delivery: one per delivery, plus the first
        await until(lambda: _commandstats(server.port).get("cmdstat_xread") == rounds + 1)
        return _commandstats(server.port)
    finally:
        await hub.close()
        await client.aclose()


async def test_fifty_pages_cost_redis_the_commands_of_one(
    settings: Settings, redis_server: Callable[..., RedisServer], open_hub: Any
) -> None:
    # one private Redis per run: the same script cache state, the same empty keyspace
    one = await _watched_workload(redis_server(), settings, open_hub, 1, rounds=5)
    fifty = await _watched_workload(redis_server(), settings, open_hub, 50, rounds=5)
    assert one == fifty
    assert one["cmdstat_subscribe"] == 1


def test_the_api_stops_on_sigterm_with_an_event_stream_open(
    namespace: str, sync_client: redis.Redis, tmp_path: Path
) -> None:
    # given `serve_api` (what `runbus run api` runs) with a client reading an event stream
    port = free_port()
    env = {
        **_api_env(namespace, f"sqlite:///{tmp_path / 'h.db'}", port),
        "RUNBUS_UI_SAMPLE_S": "0.2",
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.api.sse_server"],
        env=env, cwd=Path(__file__).resolve().parents[3], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base + "/readyz"), timeout=30)
        with httpx.stream("GET", base + "/test/live", timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert next(lines) == "retry: 3000"
            assert next(line for line in lines if line.startswith("event:")) == "event: status"
            # when SIGTERM arrives while the stream is open
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            # then the server exits 0 within a few seconds, and the stream has ended
            try:
                assert proc.wait(5) == 0
            except subprocess.TimeoutExpired:
                pytest.fail("the API ignored SIGTERM for 5 s with an event stream open")
            assert time.monotonic() - started < 5
            rest = list(lines)
        assert all(not line.startswith("event: resync") for line in rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def test_metrics_count_the_open_subscriptions(http: httpx.AsyncClient) -> None:
    body = (await http.get("/metrics")).text
    for topic in TOPICS:
        assert f'runbus_ui_subscribers{{topic="{topic}"}} 0.0' in body
