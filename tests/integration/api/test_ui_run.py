"""The run page over HTTP: one run's timeline (both dialects) and its family tree.

Given runs seeded straight into the app's history (SQLite, the test's own), when the dashboard's
run page is requested, then it shows what ``GET /api/runs/{id}/events`` returns, in event-time
order with ``ts`` and ``created_at`` side by side, links its parent and children, renders hostile
text inert, takes any run id, pages with the cursor, and answers bad input with a page, never a
500.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.api.ui.links import run_url
from services.api.ui.render import when
from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration

Seed = Callable[..., Awaitable[int]]
HOSTILE = "<script>alert(1)</script>\u202egnp.exe\x00end"


def row_ids(page: str) -> list[str]:
    """The event ids of the timeline's rows, in page order."""
    return [html.unescape(i) for i in re.findall(r'<tr id="event-([^"]*)"', page)]


def run_links(page: str, css_class: str) -> list[str]:
    """The hrefs of the family tree's entries of one kind (ancestor, current, child)."""
    found = re.findall(rf'<li class="{css_class}"><a href="([^"]*)"', page)
    return [html.unescape(href) for href in found]


async def test_both_dialects_in_event_time_order_with_both_times(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given a run with a BrewSLM and a Pulse event, stored out of event-time order
    await seed_history(
        pulse("run-a", at(20), event_id="p2", event_type="run.failed", severity="error",
              message="worker lost", details={"attempt": 3}),
        brewslm("run-a", at(10), event_id="b1", stage="training", severity="warning",
                reason_code="training_oom", actor="ada", summary="loss went up",
                payload={"loss": 9.5}),
    )  # fmt: skip
    api = (await http.get("/api/runs/run-a/events")).json()["events"]
    # when its page is opened
    reply = await http.get("/ui/runs/run-a")
    # then it shows the API's rows, oldest first, each dialect with its own fields
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    page = reply.text
    assert row_ids(page) == [e["event_id"] for e in api] == ["b1", "p2"]
    for event in api:  # event time and insert time, side by side
        assert when(event["ts"]) in page and when(event["created_at"]) in page
    assert '<span class="sev sev-warning">warning</span>' in page
    assert '<span class="sev sev-error">error</span>' in page
    for text in ("training_oom", "ada", "loss went up", "run.failed", "worker lost"):
        assert text in page
    assert "&#34;loss&#34;: 9.5" in page and "&#34;attempt&#34;: 3" in page
    assert page.count('<details class="body">') == 2


async def test_hostile_text_renders_inert_with_its_invisible_characters_shown(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given events whose summary, message, payload and details are hostile
    await seed_history(
        brewslm("run-h", at(1), summary=HOSTILE, actor=HOSTILE, payload={HOSTILE: HOSTILE}),
        pulse("run-h", at(2), message=HOSTILE, details={"x": HOSTILE}),
    )
    # when the run's page is opened
    page = (await http.get("/ui/runs/run-h")).text
    # then no markup of theirs is live and the NUL and RTL override show as marks
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\u202e" not in page and "\x00" not in page
    assert page.count("\\u202egnp.exe") >= 5  # summary, actor, message, and in the JSON


async def test_a_child_links_its_parent_and_the_parent_its_children(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given an autopilot run, two runs nested under it, and one nested under a child
    await seed_history(
        brewslm("autopilot-1", at(1), stage="autopilot", event_id="root"),
        brewslm("exp-1", at(2), parent_run_id="autopilot-1", event_id="c1"),
        pulse("pulse-1", at(3), parent_run_id="autopilot-1", event_id="c2"),
        brewslm("exp-1-retry", at(4), parent_run_id="exp-1", event_id="g1"),
    )
    # when the parent's page is opened, it lists its direct children as links
    parent = (await http.get("/ui/runs/autopilot-1")).text
    assert run_links(parent, "child") == ["/ui/runs/exp-1", "/ui/runs/pulse-1"]
    assert run_links(parent, "ancestor") == []
    assert row_ids(parent) == ["root"]  # the timeline is the run's own unless asked
    # and a grandchild's page shows the whole chain above it, root first
    grandchild = (await http.get("/ui/runs/exp-1-retry")).text
    assert run_links(grandchild, "ancestor") == ["/ui/runs/autopilot-1", "/ui/runs/exp-1"]
    assert run_links(grandchild, "current") == ["/ui/runs/exp-1-retry"]


async def test_include_children_shows_the_descendants_events_with_their_run(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    await seed_history(
        brewslm("auto-2", at(1), stage="autopilot", event_id="root"),
        brewslm("exp-2", at(2), parent_run_id="auto-2", event_id="child"),
    )
    alone = (await http.get("/ui/runs/auto-2")).text
    assert 'href="/ui/runs/auto-2?children=true" id="toggle-children"' in alone
    family = (await http.get("/ui/runs/auto-2?children=true")).text
    assert row_ids(family) == ["root", "child"]
    assert '<a href="/ui/runs/exp-2">exp-2</a>' in family
    assert 'href="/ui/runs/auto-2" id="toggle-children">this run only' in family


@pytest.mark.parametrize(
    ("run_id", "parent"),
    [("team/a run", "p/1"), ("100% done", "50%"), ("a#b?c=d&e", "x y/z"), ("é/..", "ü")],
)
async def test_run_ids_with_any_character_have_working_links(
    http: httpx.AsyncClient, seed_history: Seed, run_id: str, parent: str
) -> None:
    # given a child and a parent whose ids hold slashes, percents, spaces, # and ?
    await seed_history(
        brewslm(parent, at(1), event_id="parent"),
        brewslm(run_id, at(2), parent_run_id=parent, event_id="child"),
    )
    # when the child's page is opened through its quoted URL
    reply = await http.get(run_url(run_id))
    # then it is found, and the links of its tree lead to pages that are found too
    assert reply.status_code == 200, reply.text
    assert row_ids(reply.text) == ["child"]
    (up,) = run_links(reply.text, "ancestor")
    assert up == run_url(parent)
    back = await http.get(up)
    assert back.status_code == 200 and run_links(back.text, "child") == [run_url(run_id)]


async def test_the_cursor_pages_through_the_run_once(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given a run of five events
    await seed_history(*[brewslm("run-p", at(i), event_id=f"e{i}") for i in range(5)])
    # when its pages are followed two at a time through the "next page" links
    seen: list[str] = []
    url: str | None = "/ui/runs/run-p?limit=2"
    for _ in range(5):
        assert url is not None
        page = (await http.get(url)).text
        seen += row_ids(page)
        found = re.search(r'<a href="([^"]*)" id="next-page"', page)
        url = html.unescape(found.group(1)) if found else None
        if url is None:
            break
        assert "limit=2" in url and 'id="first-page"' in (await http.get(url)).text
    # then every event came once, in order
    assert seen == [f"e{i}" for i in range(5)]


async def test_an_unknown_run_is_the_404_page(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/runs/no-such-run")
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("text/html")
    assert 'data-error="run_not_found"' in reply.text


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_request"),
        ("limit=99999", "invalid_request"),
        ("limit=x", "invalid_request"),
        ("cursor=garbage", "invalid_cursor"),
        ("cursor=" + "9" * 100, "invalid_request"),
        ("children=maybe", "invalid_request"),
    ],
)
async def test_bad_parameters_are_a_422_page(
    http: httpx.AsyncClient, seed_history: Seed, query: str, code: str
) -> None:
    await seed_history(brewslm("run-q", at(1)))
    reply = await http.get(f"/ui/runs/run-q?{query}")
    assert reply.status_code == 422 and f'data-error="{code}"' in reply.text


async def test_a_run_id_too_long_for_the_api_is_a_422_page(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/runs/" + "r" * 300)
    assert reply.status_code == 422 and "<h1>invalid_request</h1>" in reply.text
