"""The overview page over HTTP: every partition's streams, health words, fragments, edge cases.

Given an API on the machine's Redis (the test's namespace), with or without routed entries,
with one or three partitions, when the overview and its fragments are fetched, then every
stream and group of every partition is listed with links to its dead letters, each service
has a health word, each fragment renders alone, and absent streams, an unreachable Redis and
hostile consumer names never give a 500 or live markup. The page shows the live hub's newest
status sample, so a test samples often (`SAMPLE_S`) and reads the page until it shows what was
seeded (with a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import orjson
import pytest
import redis

from services.api.app import build_server
from services.api.ui.overview_model import HEALTH_WORDS
from services.validator.app import run_validator
from shared.names import Names
from shared.settings import Settings
from tests.conftest import free_port
from tests.integration.api.helpers import eventually
from tests.integration.validator.helpers import good_event, xadd_raw

pytestmark = pytest.mark.integration
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
PARTS = ("health", "throughput", "streams", "dead")
SERVICES = ("validator", "persister", "coach", "api")
SAMPLE_S = 0.05


@pytest.fixture
async def http(make_client: MakeClient) -> httpx.AsyncClient:
    """The app with the test settings, sampling the bus every `SAMPLE_S`."""
    return await make_client(ui_sample_s=SAMPLE_S)


async def page_showing(client: httpx.AsyncClient, text: str, timeout: float = 10.0) -> str:
    """The overview once its newest sample shows `text` (polled with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = await client.get("/ui")
        assert reply.status_code == 200
        if text in reply.text:
            return reply.text
        if time.monotonic() > deadline:
            raise AssertionError(f"the overview did not show {text!r} within {timeout}s")
        await asyncio.sleep(SAMPLE_S)


async def route_through_validator(
    sync_client: redis.Redis, settings: Settings, runs: list[str]
) -> None:
    """One good event per run and one malformed entry, routed by the real validator."""
    names = settings.names
    for run in runs:
        body = orjson.dumps(good_event(run_id=run))
        xadd_raw(sync_client, names.partition_for(run).events, [body])
    xadd_raw(sync_client, names.events, [b"{not json"])
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))

    def routed() -> bool:
        return sum(sync_client.xlen(p.valid) + sync_client.xlen(p.dead)
                   for p in names.all_partitions) == len(runs) + 1  # fmt: skip

    try:
        await eventually(routed)
    finally:
        stop.set()
        await task


def section(html: str, ident: str) -> str:
    found = re.search(rf'<div id="{ident}"[^>]*>(.*?)</div>\s*</section>', html, re.S)
    assert found, f"no {ident} on the page"
    return found.group(1)


def health_of(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-service="([^"]+)">.*?data-health="([^"]+)"', html, re.S))


async def test_the_overview_lists_each_stream_and_group_with_links_and_health(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given entries routed by the validator (one dead-lettered)
    await route_through_validator(sync_client, settings, ["exp-1", "exp-2"])
    # when the overview is opened (once its sample has the dead letter)
    html = await page_showing(http, 'data-dead="1"')
    streams = section(html, "overview-streams")
    # then each stream is there with its length, and each expected group
    for stream in ("events", "valid", "dead"):
        assert f'data-stream="{stream}"' in streams
    assert settings.names.events in streams and 'data-group="validator"' in streams
    assert 'href="/ui/dead-letters?source=events"' in streams
    assert 'href="/ui/dead-letters?source=events&amp;stage=validator"' in streams
    assert re.search(r"idle \d+(ms|s)", streams), "no consumer idle time in human units"
    assert 'id="totals"' not in streams, "one partition: no totals"
    # and every service has a health word; dead letters are counted by family with a link
    health = health_of(html)
    assert set(health) == set(SERVICES) and set(health.values()) <= set(HEALTH_WORDS)
    assert health["api"] == "up" and health["validator"] == "up", health
    assert health["persister"] == "down", "its group does not exist: nobody reads valid"
    dead = section(html, "overview-dead")
    assert 'href="/ui/dead-letters?reason=malformed_json"' in dead


async def test_the_overview_lists_the_actions_stream_and_the_platform_group(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given two action requests, one delivered to the platform's group and not acknowledged
    names = settings.names
    for _ in range(2):
        sync_client.xadd(names.actions, {b"__data__": b"{}"})
    sync_client.xgroup_create(names.actions, "platform", id="0")
    sync_client.xreadgroup("platform", "platform-1", {names.actions: ">"}, count=1)
    # when the overview is opened (once its sample has the consumer)
    html = await page_showing(http, "platform-1")
    outlets = re.search(r"<tbody data-outlets[^>]*>(.*?)</tbody>", html, re.S)
    assert outlets, "no outlet rows"
    rows = outlets.group(1)
    # then the stream is listed with its length, linked to the action requests' page
    assert names.actions in rows and 'href="/ui/actions"' in rows
    row = re.search(r'<tr data-stream="actions" data-group="platform">(.*?)</tr>', rows, re.S)
    assert row, rows
    cells = dict(re.findall(r'<td[^>]*class="num (length|lag|pending)"[^>]*>(\d+)', row.group(1)))
    assert cells == {"length": "2", "lag": "1", "pending": "1"}, row.group(1)
    assert "read by the platform" in row.group(1)


async def test_every_partition_has_its_streams_and_the_roles_are_totalled(
    make_client: MakeClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a bus of three partitions with entries routed in each
    three = settings.model_copy(update={"partitions": 3})
    runs = [f"exp-{i}" for i in range(12)]
    assert {three.names.partition_for(r).index for r in runs} == {0, 1, 2}
    client = await make_client(partitions=3, ui_sample_s=SAMPLE_S)
    await route_through_validator(sync_client, three, runs)
    # when the overview is opened (once its sample has every entry)
    html = await page_showing(client, 'data-dead="1"')
    # then each partition is a group of rows holding its own streams
    bodies = dict(re.findall(r'<tbody data-partition="(\d)">(.*?)</tbody>', html, re.S))
    assert sorted(bodies) == ["0", "1", "2"]
    for index, rows in bodies.items():
        partition = three.names.partition(int(index))
        assert f"partition {index}" in rows
        for key in (partition.events, partition.valid, partition.dead):
            assert key in rows
    # and the totals sum the partitions
    totals = re.search(r'<table class="grid totals" id="totals">(.*?)</table>', html, re.S)
    assert totals and "Totals over 3 partitions" in totals.group(1)
    events = re.search(
        r'data-role="events">.*?<td class="num"[^>]*>(\d+)</td>', totals.group(1), re.S
    )
    assert events and int(events.group(1)) == len(runs) + 1


@pytest.mark.parametrize("part", PARTS)
async def test_each_fragment_renders_alone(http: httpx.AsyncClient, part: str) -> None:
    reply = await http.get(f"/ui/overview/{part}")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    assert "<html" not in reply.text and "<h1>" not in reply.text
    assert reply.text.strip()


async def test_the_poll_answer_swaps_every_part_out_of_band(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/overview/parts", headers={"HX-Request": "true"})
    assert reply.status_code == 200 and "<html" not in reply.text
    for part in PARTS:
        assert f'<div id="overview-{part}" hx-swap-oob="innerHTML">' in reply.text


async def test_an_unknown_fragment_is_a_422_page(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/overview/secrets", headers={"HX-Request": "true"})
    assert reply.status_code == 422 and 'class="notice error"' in reply.text


async def test_absent_streams_render_as_absent(http: httpx.AsyncClient) -> None:
    # given a namespace where nothing ever ran
    page = await http.get("/ui")
    assert page.status_code == 200
    streams = section(page.text, "overview-streams")
    assert streams.count(">absent<") >= 3
    for part in PARTS:
        assert (await http.get(f"/ui/overview/{part}")).status_code == 200


async def test_an_unreachable_redis_is_said_not_a_500(make_client: MakeClient) -> None:
    client = await make_client(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    page = await client.get("/ui")
    assert page.status_code == 200 and "Redis could not be read" in page.text
    assert health_of(page.text)["api"] == "down"
    for part in PARTS:
        assert (await client.get(f"/ui/overview/{part}")).status_code == 200


async def test_a_hostile_consumer_name_renders_as_text(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a consumer whose name is markup with an RTL override and a NUL
    hostile = "<script>alert(1)</script>\u202e\x00"
    names: Names = settings.names
    xadd_raw(sync_client, names.events, [orjson.dumps(good_event())])
    sync_client.xgroup_create(names.events, "validator", id="0")
    sync_client.xreadgroup("validator", hostile, {names.events: ">"}, count=1)
    # when the overview is opened (once its sample has the consumer)
    html = await page_showing(http, "&lt;script&gt;")
    # then it is shown as text, its invisible characters as visible marks
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\u202e\\u0000" in html


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[str]:
    """The API on a real loopback port (an event stream needs a real server), its base URL."""
    port = free_port()
    server = build_server(
        settings.model_copy(
            update={"api_host": "127.0.0.1", "api_port": port, "ui_sample_s": SAMPLE_S}
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_events(base_url: str, count: int, timeout: float = 10.0) -> list[str]:
    """The first `count` events of the overview's stream: each its name, then its data lines."""
    events: list[str] = []
    async with (
        asyncio.timeout(timeout),
        httpx.AsyncClient(base_url=base_url) as client,
        client.stream("GET", "/ui/overview/live") as reply,
    ):
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        async for line in reply.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
            elif line.startswith("data: ") and events:
                events[-1] += "\n" + line.removeprefix("data: ")
            if len(events) == count:
                break
    return events


async def test_the_live_stream_sends_every_part_at_each_sample(
    settings: Settings, sync_client: redis.Redis
) -> None:
    # given a served API, when a page listens to the overview's stream for two samples
    async with served(settings) as base_url:
        events = await read_events(base_url, 2 * len(PARTS))
    # then each sample sent every part, each a fragment of the page
    names = [event.split("\n", 1)[0] for event in events]
    assert names == [*PARTS, *PARTS]
    assert all("<html" not in event for event in events)
    health = next(e for e in events if e.startswith("health"))
    assert 'data-service="api"' in health and 'data-health="up"' in health
