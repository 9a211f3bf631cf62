"""The project page in a real browser: Coach Mode strips, live updates, actions, the timeline.

Given a running bus with the demo's workload (and a token), and a bare API without one, when
Chromium opens a project's page, then every coach strip shows what ``GET /api/projects/{id}/coach``
serves, a strip follows the coach cache without a reload, a click on an action button (signed
in) records exactly one action request, a read-only dashboard offers no button and refuses the
route, and a filtered timeline's URL opened fresh shows the same filter. Tests that write use a
project of their own, so the demo's projects stay as the other page tests expect them.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime

import httpx
import orjson
import redis.asyncio as aredis
from playwright.async_api import Page, expect

from shared.models import COACH_STAGES, ActionRequest, CoachDocument, Suggestion
from shared.names import Names
from shared.wire import DATA_FIELD, parse_action
from tests.browser.conftest import BROWSER_TESTS, PageWatch, screenshot, sign_in
from tests.conftest import REDIS_URL
from tests.live_api import LiveApi
from tests.live_bus import LiveBus

pytestmark = BROWSER_TESTS
WAIT_MS = 20_000
#: Projects of this module's own (the demo's are 1 and 2).
_projects = itertools.count(7_000 + uuid.uuid4().int % 1_000 * 10)


async def publish(names: Names, event: dict[str, object]) -> None:
    """One event on the incoming stream, as any producer writes it (`shared.wire`)."""
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        stream = names.partition_for(str(event["run_id"])).events
        await client.xadd(stream, {DATA_FIELD: orjson.dumps(event)})
    finally:
        await client.aclose()


def review_queue(project_id: int, pending: int) -> dict[str, object]:
    """A cleaning event reporting `pending` rows in the review queue (the coach's cleaning rule)."""
    return {
        "project_id": project_id, "run_id": f"clean-{project_id}", "stage": "cleaning",
        "severity": "info", "summary": "review queue", "payload": {"review_queue": pending},
        "ts": datetime.now(UTC).isoformat(),
    }  # fmt: skip


def coach_title(bus: LiveBus, project_id: int, stage: str, timeout: float = 20.0) -> list[str]:
    """The stage's suggestion titles once the API has a document for it (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = httpx.get(bus.url(f"/api/projects/{project_id}/coach/{stage}"))
        if reply.status_code == 200:
            return [s["title"] for s in reply.json()["suggestions"]]
        time.sleep(0.1)
    raise AssertionError(f"no coach document for {project_id}/{stage} within {timeout}s")


async def own_project(bus: LiveBus, pending: int) -> int:
    """A fresh project whose cleaning strip has one suggestion ("<pending> rows waiting ...")."""
    project_id = next(_projects)
    await publish(bus.names, review_queue(project_id, pending))
    titles = coach_title(bus, project_id, "cleaning")
    assert titles == [f"{pending} rows waiting for review"], titles
    return project_id


async def test_every_coach_strip_shows_what_the_api_serves(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    for project_id in live_bus.projects:
        # given a demo project's cached suggestions, as the JSON API serves them
        api = httpx.get(live_bus.url(f"/api/projects/{project_id}/coach")).json()["stages"]
        # when its page is opened
        await page.goto(live_bus.url(f"/ui/projects/{project_id}"))
        await watch.wait_rendered(page.locator("#strip-eval"))
        # then each coach stage's strip shows those suggestions, severity in words too
        for stage in COACH_STAGES:
            strip = page.locator(f"#strip-{stage}")
            expected = api[stage]["suggestions"]
            await expect(strip.locator(".title")).to_have_text([s["title"] for s in expected])
            words = ["warning" if s["severity"] == "warning" else s["severity"] for s in expected]
            await expect(strip.locator(".sev")).to_have_text(words)
            await expect(strip.locator(".action-label")).to_have_text(
                [s["action"]["label"] for s in expected]
            )
            assert await strip.get_attribute("data-version") == str(api[stage]["version"])
    # the docs' picture: the strips and the first rows of the timeline
    await page.goto(live_bus.url(f"/ui/projects/{live_bus.projects[0]}?limit=12"))
    await expect(page.locator("#timeline-rows tbody tr")).to_have_count(12)
    await screenshot(page, "project")
    watch.assert_offline_and_clean()


async def test_a_cache_change_updates_its_strip_without_a_reload(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given a project's page showing 12 rows waiting for review
    project_id = await own_project(live_bus, 12)
    await page.goto(live_bus.url(f"/ui/projects/{project_id}"))
    strip = page.locator("#strip-cleaning")
    await expect(strip.locator(".title")).to_have_text(["12 rows waiting for review"])
    await expect(page.locator("#strip-training .empty")).to_be_visible()
    marker = await page.evaluate("() => (window.__loaded = Math.random())")
    # when an event changes the queue to 64 (the coach rewrites the document)
    await publish(live_bus.names, review_queue(project_id, 64))
    # then the strip follows, severity included, and the page was never reloaded
    await expect(strip.locator(".title")).to_have_text(
        ["64 rows waiting for review"], timeout=WAIT_MS
    )
    await expect(strip.locator(".sev")).to_have_text(["warning"])
    assert await page.evaluate("() => window.__loaded") == marker
    watch.assert_offline_and_clean()


async def test_the_timeline_filter_lives_in_the_url(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    project_id = live_bus.projects[0]
    # given the project page, when the timeline is filtered through the form
    await page.goto(live_bus.url(f"/ui/projects/{project_id}"))
    await page.select_option("#timeline-filters select[name=severity]", "info")
    await page.select_option("#timeline-filters select[name=stage]", "training")
    await page.click("#timeline-filters button[type=submit]")
    await page.wait_for_url("**severity=info**", timeout=WAIT_MS)
    rows = page.locator("#timeline-rows tbody tr")
    await expect(rows.first).to_be_visible()
    ids = await rows.evaluate_all("rows => rows.map(r => r.dataset.eventId)")
    url = page.url
    # then the same URL, opened fresh, shows the same filter and the same rows
    fresh = await page.context.new_page()
    await fresh.goto(url)
    await expect(fresh.locator("select[name=severity]")).to_have_value("info")
    await expect(fresh.locator("select[name=stage]")).to_have_value("training")
    again = await fresh.locator("#timeline-rows tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.eventId)"
    )
    assert again == ids and ids
    api = httpx.get(
        live_bus.url(f"/api/projects/{project_id}/events"),
        params={"severity": "info", "stage": "training"},
    ).json()
    assert ids == [e["event_id"] for e in api["events"]]
    await fresh.close()
    watch.assert_offline_and_clean()


async def test_read_only_shows_no_buttons_and_refuses_the_action_route(
    live_api: LiveApi, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given a bare API (no token) whose cache holds a suggestion
    names = Names(live_api.namespace)
    doc = CoachDocument(
        project_id=5, stage="gold_set", version=1, computed_at=datetime.now(UTC),
        source_id=None, taxonomy_version="t",
        suggestions=[Suggestion.model_validate({
            "severity": "warning", "title": "Your gold set has 78 rows", "body": "top up",
            "action": {"kind": "run_playbook", "label": "Top up", "params": {}},
        })],
    )  # fmt: skip
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        await client.set(names.coach_key(5, "gold_set"), doc.model_dump_json())
        await client.sadd(names.coach_projects, "5")
    finally:
        await client.aclose()
    # when the project page is opened, then the action is a label, not a button
    await page.goto(live_api.url("/ui/projects/5"))
    strip = page.locator("#strip-gold_set")
    await expect(strip.locator(".action-label")).to_have_text(["Top up"])
    assert await page.locator("#coach button, #coach form").count() == 0
    # and the write route refuses
    reply = httpx.post(
        live_api.url("/ui/projects/5/coach/gold_set/actions"), data={"version": 1, "index": 0}
    )
    assert reply.status_code == 403 and 'data-error="read_only"' in reply.text
    watch.assert_offline_and_clean()


async def actions_of(names: Names, project_id: int) -> list[ActionRequest]:
    """The action requests on the actions stream for `project_id` (XRANGE, whole stream)."""
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(names.actions)  # type: ignore[assignment]
    finally:
        await client.aclose()
    found = [parse_action(fields) for _id, fields in entries]
    return [a for a in found if a.project_id == project_id]


async def test_a_click_on_an_action_records_exactly_one_request(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given a signed-in operator on a project's page
    project_id = await own_project(live_bus, 21)
    await sign_in(page, live_bus, who="grace")
    await page.goto(live_bus.url(f"/ui/projects/{project_id}"))
    strip = page.locator("#strip-cleaning")
    button = strip.get_by_role("button", name="Open the review queue")
    version = int(await strip.get_attribute("data-version") or "0")
    # when they click the cleaning strip's action button
    await button.click()
    # then the strip confirms it, and the actions stream holds exactly that one request
    confirmation = strip.locator(".confirmation")
    await expect(confirmation).to_be_visible(timeout=WAIT_MS)
    [made] = await actions_of(live_bus.names, project_id)
    assert await confirmation.get_attribute("data-request-id") == made.request_id
    assert (made.who, made.stage, made.version, made.index) == ("grace", "cleaning", version, 0)
    assert (made.kind, made.label, made.title) == (
        "navigate", "Open the review queue", "21 rows waiting for review")  # fmt: skip
    assert made.params == {"target": "review-queue"}
    await expect(confirmation).to_contain_text(made.request_id)
    watch.assert_offline_and_clean()
