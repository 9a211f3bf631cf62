"""The version map against a real Redis (`services.api.versions`): a poll naming the latest
version is a 304 without a Redis call, a change written by the coach's own write script makes
the next poll a 200 with the new ETag, and a lost subscription falls back to reading Redis.

Each test runs the app on a private redis-server: its command counts are the test's alone, and
killing its pub/sub client touches nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis

from services.api import versions
from services.api.live import LiveHub
from services.coach.io import CoachStore, StageResult
from shared.connections import async_redis
from shared.models import COACH_STAGES, NavigateAction, Suggestion
from shared.settings import Settings
from tests.conftest import RedisServer
from tests.integration.api.helpers import started_app
from tests.integration.api.test_coach import first_200

pytestmark = pytest.mark.integration
PATH = "/api/projects/3/coach/data"
NOW = datetime(2026, 5, 1, tzinfo=UTC)


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def reads(port: int) -> int:
    """GET and GETRANGE calls the server ran so far."""
    with redis.Redis(port=port) as client:
        stats: Any = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("get", "getrange"))


async def write(settings: Settings, title: str, project_id: int = 3, stage: str = "data") -> int:
    """A document (project 3's data one) through the coach's write script; its new version."""
    suggestion = Suggestion(
        severity="warning", title=title, body="Because.",
        action=NavigateAction(label="Go", params={"target": "x"}),
    )  # fmt: skip
    client = async_redis(settings)
    try:
        result = StageResult(project_id=project_id, stage=stage, rev=1, suggestions=[suggestion])
        written = await CoachStore(client, settings.names).write(
            result, taxonomy_version="t", now=NOW
        )
    finally:
        await client.aclose()
    assert written.outcome == "written"
    return written.version


@pytest.fixture
async def served(
    settings: Settings, redis_server: Callable[..., RedisServer]
) -> AsyncIterator[Callable[[], Awaitable[tuple[httpx.AsyncClient, LiveHub, Settings, int]]]]:
    """Factory: the app on a private Redis, once its hub listens: client, hub, settings, port."""
    async with contextlib.AsyncExitStack() as stack:

        async def make() -> tuple[httpx.AsyncClient, LiveHub, Settings, int]:
            server = redis_server()
            config = settings.model_copy(update={"redis_url": server.url, "ui_sample_s": 3600.0})
            app, http = await stack.enter_async_context(started_app(config))
            hub: LiveHub = app.state.api.live
            assert await hub.listening("coach", 15)
            return http, hub, config, server.port

        yield make


async def test_a_poll_of_the_latest_version_costs_redis_nothing(served: Any) -> None:
    # given the coach's document, read once by a dashboard
    http, hub, settings, port = await served()
    first = await write(settings, "first")
    answer = await http.get(PATH)
    assert answer.headers["etag"] == f'"{first}"'
    await until(lambda: hub.versions.version(3, "data") == first)
    # when the dashboard polls with its ETag, twenty times
    before = reads(port)
    for _ in range(20):
        polled = await http.get(PATH, headers={"If-None-Match": f'"{first}"'})
        assert polled.status_code == 304 and polled.headers["etag"] == f'"{first}"'
    # then Redis was not asked
    assert reads(port) == before
    # and once the coach's script wrote a change, the next polls get it
    second = await write(settings, "second")
    changed = await first_200(http, PATH, f'"{first}"')
    assert changed.headers["etag"] == f'"{second}"' == f'"{first + 1}"'
    assert changed.json()["suggestions"][0]["title"] == "second"


async def test_a_lost_subscription_falls_back_to_redis(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given entries believed for an hour (so only the lost subscription can end this one)
    monkeypatch.setattr(versions, "ENTRY_TTL_S", 3600.0)
    http, hub, settings, port = await served()
    first = await write(settings, "first")
    assert (await http.get(PATH)).status_code == 200
    await until(lambda: hub.versions.version(3, "data") == first)
    # when the API's subscription is cut, and the coach writes while nobody listens
    with redis.Redis(port=port) as admin:
        assert admin.client_kill_filter(_type="pubsub") >= 1
    await until(lambda: hub.versions.version(3, "data") is None)
    second = await write(settings, "second")
    # then the old ETag's poll reads Redis and gets the new document at once, while the hub
    # is away and once it subscribed again (what was published in between was not heard)
    for _ in ("away", "back"):
        before = reads(port)
        changed = await http.get(PATH, headers={"If-None-Match": f'"{first}"'})
        assert changed.status_code == 200 and changed.headers["etag"] == f'"{second}"'
        assert reads(port) > before
        await until(lambda: hub.versions.trusted)
    # and what a read saw is believed again: 304s without Redis
    assert (await http.get(PATH, headers={"If-None-Match": f'"{second}"'})).status_code == 304
    await until(lambda: hub.versions.version(3, "data") == second)
    before = reads(port)
    assert (await http.get(PATH, headers={"If-None-Match": f'"{second}"'})).status_code == 304
    assert reads(port) == before


async def test_concurrent_polls_share_reads_and_each_sees_what_was_written_before_it(
    served: Any,
) -> None:
    # given the coach's document, and fifty dashboards polling it at once
    http, _, settings, port = await served()
    first = await write(settings, "first")
    before = reads(port)
    answers = await asyncio.gather(*(http.get(PATH) for _ in range(50)))
    # then all had the same bytes, from fewer reads than polls (they shared commands)
    assert {(a.status_code, a.headers["etag"], a.content) for a in answers} == {
        (200, f'"{first}"', answers[0].content)
    }
    assert reads(port) - before < 50
    # when polls are in flight while the coach writes, and more are sent once it is written
    early = [asyncio.create_task(http.get(PATH)) for _ in range(25)]
    second = await write(settings, "second")
    late = await asyncio.gather(*(http.get(PATH) for _ in range(25)))
    # then every poll sent after the write has the new document (none joined an older read)
    assert {a.headers["etag"] for a in late} == {f'"{second}"'}
    assert {a.json()["suggestions"][0]["title"] for a in late} == {"second"}
    assert {a.status_code for a in await asyncio.gather(*early)} == {200}


async def test_concurrent_polls_of_many_documents_each_get_their_own(served: Any) -> None:
    # given forty documents, each titled after itself
    http, _, settings, _ = await served()
    docs = [(p, stage) for p in range(10, 18) for stage in COACH_STAGES]
    for p, stage in docs:
        await write(settings, f"{p}/{stage}", p, stage)
    # when dashboards poll all of them at once, three times over, some with a stale ETag
    paths = [f"/api/projects/{p}/coach/{stage}" for p, stage in docs] * 3
    stale = {"If-None-Match": '"0"'}
    answers = await asyncio.gather(
        *(http.get(path, headers=stale if i % 2 else None) for i, path in enumerate(paths))
    )
    # then each answer is its own document (batched reads never mix replies up)
    for path, answer in zip(paths, answers, strict=True):
        assert answer.status_code == 200
        doc = answer.json()
        assert f"/api/projects/{doc['project_id']}/coach/{doc['stage']}" == path
        assert doc["suggestions"][0]["title"] == f"{doc['project_id']}/{doc['stage']}"
