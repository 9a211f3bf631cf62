"""The projects list and the project page over HTTP: strips, empty states, filters, escaping,
and the action buttons.

Given a coach cache and a history written the way the coach and the persister write them,
when the dashboard's project pages are read, then each coach stage has its strip (or an
explicit empty state), the timeline takes exactly the API's filters (a bad one is a 422 page),
an unknown project is a 404 page, and hostile text renders as inert, visible text. A signed-in
click records one action request built from the cache (a stale one none, and refreshes the
strip); without a session the route refuses and no button shows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aredis
from markupsafe import escape

from shared.models import COACH_STAGES, ActionRequest, CoachDocument, Suggestion
from shared.settings import Settings
from shared.wire import parse_action
from tests.integration.api.test_live import until, write_change
from tests.integration.api.test_ui_overview import served
from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration
Seed = Callable[..., Awaitable[int]]
SeedCoach = Callable[[CoachDocument], Awaitable[None]]
HOSTILE = "<script>alert(1)</script>\u202egnp.exe\x00"


def doc(
    stage: str, *suggestions: Suggestion, project_id: int = 7, version: int = 3
) -> CoachDocument:
    return CoachDocument.model_validate(
        {"project_id": project_id, "stage": stage, "version": version, "source_id": "1-0",
         "computed_at": datetime(2026, 3, 1, tzinfo=UTC), "taxonomy_version": "t",
         "suggestions": list(suggestions)}
    )  # fmt: skip


def suggestion(
    title: str, severity: str = "warning", body: str = "why", label: str = "Go"
) -> Suggestion:
    return Suggestion.model_validate(
        {"severity": severity, "title": title, "body": body,
         "action": {"kind": "navigate", "label": label, "params": {"target": "x"}}}
    )  # fmt: skip


def strip_of(html: str, stage: str) -> str:
    found = re.search(rf'<section class="strip[^"]*" id="strip-{stage}".*?</section>', html, re.S)
    assert found, f"no strip for {stage}"
    return found.group(0)


async def test_the_projects_list_links_every_project_the_coach_knows(
    http: httpx.AsyncClient, seed_coach: SeedCoach
) -> None:
    assert "No project yet" in (await http.get("/ui/projects")).text
    await seed_coach(doc("data", suggestion("a"), project_id=3))
    await seed_coach(doc("eval", suggestion("b"), project_id=12))
    html = (await http.get("/ui/projects")).text
    assert re.findall(r'href="/ui/projects/(\d+)"', html) == ["3", "12"]


async def test_one_strip_per_coach_stage_with_severity_in_colour_and_words(
    http: httpx.AsyncClient, seed_coach: SeedCoach, seed_history: Seed
) -> None:
    # given a project with documents for two stages (one of them with no suggestion left)
    await seed_coach(
        doc("gold_set", suggestion("Your gold set has 78 rows", "critical", label="Top up"))
    )
    await seed_coach(doc("training"))
    await seed_history(brewslm("exp-1", at(1)))
    # when its page is read
    reply = await http.get("/ui/projects/7")
    # then every coach stage has a strip, in order; the ones without a document say so
    assert reply.status_code == 200
    html = reply.text
    assert re.findall(r'id="strip-(\w+)"', html) == list(COACH_STAGES)
    gold = strip_of(html, "gold_set")
    assert "strip-critical" in gold and '<span class="sev sev-critical">critical</span>' in gold
    assert "Your gold set has 78 rows" in gold and 'data-version="3"' in gold
    assert "No suggestions for this stage yet" in strip_of(html, "data")
    assert "Nothing to do here" in strip_of(html, "training")
    # read-only: the action's label as text, no button and no form
    assert 'class="action-label" data-kind="navigate"' in gold and "Top up" in gold
    assert "<button" not in gold and "<form" not in gold


async def test_a_strip_fragment_is_204_while_its_version_is_unchanged(
    http: httpx.AsyncClient, seed_coach: SeedCoach
) -> None:
    await seed_coach(doc("eval", suggestion("cluster"), version=5))
    same = await http.get("/ui/projects/7/coach/eval?seen=5")
    assert same.status_code == 204 and same.content == b"" and same.headers["etag"] == '"5"'
    changed = await http.get("/ui/projects/7/coach/eval?seen=4")
    assert changed.status_code == 200 and 'data-version="5"' in changed.text
    assert changed.text.lstrip().startswith('<section class="strip')
    empty = await http.get("/ui/projects/7/coach/data?seen=0")
    assert empty.status_code == 204
    assert (await http.get("/ui/projects/7/coach/deploy")).status_code == 404


async def test_an_unknown_project_is_a_404_page(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/projects/404")
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("text/html")
    assert 'data-error="project_not_found"' in reply.text
    assert (await http.get("/ui/projects/-1")).status_code == 422


@pytest.mark.parametrize(
    "query",
    ["stage=nowhere", "severity=loud", "since=yesterday", "until=12:00:00+99:00", "limit=0",
     "limit=many", "event_type=run.exploded", "cursor=garbage"],
)  # fmt: skip
async def test_a_bad_filter_is_a_422_page_with_the_apis_message(
    http: httpx.AsyncClient, seed_history: Seed, query: str
) -> None:
    await seed_history(brewslm("exp-1", at(1)))
    page = await http.get(f"/ui/projects/7?{query}")
    api = await http.get(f"/api/projects/7/events?{query}")
    assert page.status_code == 422 == api.status_code
    assert page.headers["content-type"].startswith("text/html")
    error = api.json()
    if error["error"] != "invalid_request":  # FastAPI's own check of `limit` words it otherwise
        assert f'data-error="{error["error"]}"' in page.text
        assert str(escape(error["message"])) in page.text


async def test_the_timeline_takes_the_apis_filters_and_pages_with_its_cursor(
    http: httpx.AsyncClient, seed_history: Seed, seed_coach: SeedCoach
) -> None:
    # given five training events (two of them errors) and a Pulse event
    await seed_coach(doc("training", suggestion("t")))
    await seed_history(
        *[brewslm(f"exp-{i}", at(i), event_id=f"e{i}") for i in range(3)],
        *[brewslm(f"exp-{i}", at(i), event_id=f"x{i}", severity="error",
                  reason_code="training_oom") for i in (3, 4)],
        pulse("pulse-1", at(9), event_id="p1"),
    )  # fmt: skip
    # when the page is filtered as the API is, the same events come, in the same order
    query = "stage=training&severity=error&reason=training_oom&since=2026-03-01T00:00:00Z"
    html = (await http.get(f"/ui/projects/7?{query}&event_type=")).text
    api = (await http.get(f"/api/projects/7/events?{query}")).json()
    shown = re.findall(r'<tr data-event-id="([^"]+)"', html)
    assert shown == [e["event_id"] for e in api["events"]] == ["x3", "x4"]
    # and the form shows the filter it applied
    assert '<option value="error" selected>error</option>' in html
    assert 'name="reason" list="reason-codes" value="training_oom"' in html
    # each row links to its run page
    assert 'href="/ui/runs/exp-3"' in html
    # paging: two per page, then the cursor's next page (an htmx update renders the timeline only)
    first = (await http.get("/ui/projects/7?limit=2")).text
    next_url = re.search(
        r'<a href="([^"]+)" hx-get="[^"]+" hx-target="#timeline"[^>]*rel="next"',
        first,
    )
    assert next_url and "cursor=" in next_url.group(1)
    more = await http.get(
        next_url.group(1).replace("&amp;", "&"),
        headers={"HX-Request": "true", "HX-Target": "timeline"},
    )
    assert more.text.lstrip().startswith('<div id="timeline"') and "<html" not in more.text
    assert re.findall(r'<tr data-event-id="([^"]+)"', more.text) == ["e2", "x3"]
    # a filter matching nothing is an empty timeline, not a 404
    none = await http.get("/ui/projects/7?reason=nothing_like_it")
    assert none.status_code == 200 and "No event matches these filters" in none.text


async def test_hostile_history_and_coach_text_render_as_inert_text(
    http: httpx.AsyncClient, seed_history: Seed, seed_coach: SeedCoach
) -> None:
    # given a hostile summary and payload in the history, a hostile suggestion in the cache
    await seed_history(
        brewslm(HOSTILE, at(1), event_id="evil", summary=HOSTILE, payload={HOSTILE: HOSTILE})
    )
    await seed_coach(doc("eval", suggestion(HOSTILE, body=HOSTILE, label=HOSTILE)))
    # when the page renders, then no markup of theirs survives and the hidden characters show
    html = (await http.get("/ui/projects/7")).text
    assert "<script>alert" not in html and "\u202e" not in html and "\x00" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;\\u202egnp.exe\\u0000"
    assert html.count(escaped) >= 5  # title, body, label, summary, run id (and the payload)
    assert "/ui/runs/%3Cscript%3E" in html


# --- action buttons -------------------------------------------------------------------------

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
TOKEN = "project-token"
HX = {"HX-Request": "true"}


async def signed_in(make_client: MakeClient, **overrides: object) -> tuple[httpx.AsyncClient, str]:
    client = await make_client(api_token=TOKEN, **overrides)
    await client.post("/ui/login", data={"token": TOKEN, "who": "ada", "next": "/ui"})
    found = re.search(r'data-csrf="([^"]+)"', (await client.get("/ui")).text)
    assert found, "not signed in"
    return client, found.group(1)


async def requests_on_stream(client: aredis.Redis, settings: Settings) -> list[ActionRequest]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(settings.names.actions)  # type: ignore[assignment]
    return [parse_action(fields) for _id, fields in entries]


async def test_signed_in_a_click_records_one_request_and_confirms_it_in_the_strip(
    make_client: MakeClient, seed_coach: SeedCoach, async_client: aredis.Redis, settings: Settings
) -> None:
    # given a signed-in operator and a navigate suggestion, with a URL template configured
    template = "https://platform.example/p/{project_id}/{target}"
    client, csrf = await signed_in(make_client, action_url_template=template)
    await seed_coach(doc("gold_set", suggestion("first"), suggestion("Top up", label="Add rows")))
    html = (await client.get("/ui/projects/7")).text
    gold = strip_of(html, "gold_set")
    assert gold.count("<button") == 2 and 'name="index" value="1"' in gold
    # when the second button is clicked (htmx posts the form with the CSRF header)
    reply = await client.post(
        "/ui/projects/7/coach/gold_set/actions",
        data={"version": "3", "index": "1"}, headers={**HX, "X-CSRF-Token": csrf},
    )  # fmt: skip
    # then exactly one request, built from the cache, and the strip confirms it with its URL
    assert reply.status_code == 200 and reply.text.lstrip().startswith('<section class="strip')
    [made] = await requests_on_stream(async_client, settings)
    assert (made.who, made.project_id, made.stage, made.version, made.index) == (
        "ada", 7, "gold_set", 3, 1)  # fmt: skip
    assert (made.kind, made.label, made.title) == ("navigate", "Add rows", "Top up")
    assert f'data-request-id="{made.request_id}"' in reply.text
    assert 'href="https://platform.example/p/7/x"' in reply.text and 'target="_blank"' in reply.text
    # a form posted without htmx gets the whole page, the confirmation in its strip
    plain = await client.post(
        "/ui/projects/7/coach/gold_set/actions", data={"version": "3", "index": "0", "csrf": csrf}
    )
    assert plain.status_code == 200 and "<h1>Project 7</h1>" in plain.text
    assert "confirmation" in strip_of(plain.text, "gold_set")
    assert len(await requests_on_stream(async_client, settings)) == 2


async def test_a_stale_click_records_nothing_and_refreshes_the_strip(
    make_client: MakeClient, seed_coach: SeedCoach, async_client: aredis.Redis, settings: Settings
) -> None:
    client, csrf = await signed_in(make_client)
    await seed_coach(doc("eval", suggestion("newer"), version=9))
    headers = {**HX, "X-CSRF-Token": csrf}
    url = "/ui/projects/7/coach/eval/actions"
    stale = await client.post(url, data={"version": "8", "index": "0"}, headers=headers)
    assert stale.status_code == 200 and 'data-outcome="suggestion_changed"' in stale.text
    assert 'data-version="9"' in stale.text and "newer" in stale.text
    missing = await client.post(url, data={"version": "9", "index": "5"}, headers=headers)
    assert missing.status_code == 404 and 'data-error="suggestion_not_found"' in missing.text
    bad = await client.post(url, data={"version": "x", "index": "0"}, headers=headers)
    assert bad.status_code == 422 and "<html" not in bad.text
    assert await requests_on_stream(async_client, settings) == []


async def test_without_a_session_the_action_route_refuses(
    http: httpx.AsyncClient, make_client: MakeClient, seed_coach: SeedCoach
) -> None:
    await seed_coach(doc("eval", suggestion("s")))
    form = {"version": "3", "index": "0"}
    read_only = await http.post("/ui/projects/7/coach/eval/actions", data=form)
    assert read_only.status_code == 403 and 'data-error="read_only"' in read_only.text
    anonymous = await make_client(api_token=TOKEN)
    refused = await anonymous.post("/ui/projects/7/coach/eval/actions", data=form)
    assert refused.status_code == 403 and 'data-error="login_required"' in refused.text
    assert "<button" not in strip_of((await anonymous.get("/ui/projects/7")).text, "eval")


async def test_the_live_stream_says_resync_first_then_names_each_changed_stage(
    settings: Settings, async_client: aredis.Redis
) -> None:
    # given a project page's event stream (on a real server: a stream needs one)
    async with (
        served(settings) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
        client.stream("GET", "/ui/projects/7/live") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()

        async def next_event() -> tuple[str, str]:
            event = data = ""
            async for line in lines:
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif not line and event:
                    return event, data
            raise AssertionError("the stream ended")

        # then it opens with a resync (a reconnected page fetches its strips again)
        assert await asyncio.wait_for(next_event(), 10) == ("coach-resync", "connected")

        # when (once the hub listens) the coach writes project 8's data document, then 7's
        async def listening() -> bool:
            found = await async_client.pubsub_numsub(settings.names.coach_changes)
            return bool(found and found[0][1] >= 1)

        await until(listening)
        await write_change(async_client, settings, 8, "other project")
        version = await write_change(async_client, settings, 7, "GPU out of memory")
        # then the stream names project 7's stage and version only
        assert await asyncio.wait_for(next_event(), 10) == ("coach-data", str(version))
