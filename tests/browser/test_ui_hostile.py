"""Hostile text in a real browser: it renders as text, and nothing in it runs.

Given the running bus, when a producer publishes an event whose summary and payload carry
script tags, an event-handler attribute, a right-to-left override and a NUL byte (and an
invalid entry with a NUL in its body), and Chromium opens the run page, the project timeline
and the dead letter, then the text is shown literally (the invisible characters as ``\\u…``
marks), no script ran, no dialog opened, and the page reported no error. Also the action
requests page, with its screenshot.
"""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
import redis
from playwright.async_api import Dialog, Page

from shared.wire import DATA_FIELD
from tests.browser.conftest import BROWSER_TESTS, PageWatch, screenshot
from tests.conftest import REDIS_URL
from tests.live_bus import LiveBus

pytestmark = BROWSER_TESTS
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">\u202eevil\x00'
PROJECT = 9100


def publish(bus: LiveBus, body: bytes) -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return client.xadd(bus.names.events, {DATA_FIELD: body}).decode()  # type: ignore[union-attr]
    finally:
        client.close()


def poll(what: str, check: object, timeout: float = 20.0) -> object:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


async def assert_inert(page: Page, watch: PageWatch, dialogs: list[str]) -> None:
    assert await page.evaluate("window.__pwned") is None, "a hostile script ran"
    assert dialogs == []
    watch.assert_offline_and_clean()


async def test_a_hostile_summary_renders_as_text_everywhere(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)

    page.on("dialog", on_dialog)
    # given a valid event with a hostile summary and payload, and an invalid one with a NUL
    run = f"hostile-{uuid.uuid4().hex[:8]}"
    event = {
        "project_id": PROJECT, "run_id": run, "stage": "training", "severity": "error",
        "reason_code": "training_oom", "summary": HOSTILE, "payload": {"note": HOSTILE},
        "ts": "2026-05-01T12:00:00Z",
    }  # fmt: skip
    publish(live_bus, orjson.dumps(event))
    bad = publish(live_bus, b'{"run_id": "' + run.encode() + b'", "x": "<script>\x00</script>"')
    http = httpx.Client(base_url=live_bus.base_url)
    poll("the event stored", lambda: http.get(f"/api/runs/{run}/events").status_code == 200)

    def dead_id() -> str | None:
        items = http.get("/api/dead-letters", params={"limit": 100}).json()["items"]
        return next((item["id"] for item in items if item["source_id"] == bad), None)

    dead = poll("the dead letter", dead_id)
    # when the run page opens, then the summary is shown as text, its override as a mark
    await page.goto(live_bus.url(f"/ui/runs/{run}"))
    await watch.wait_rendered(page.get_by_text("\\u202eevil").first)
    body = await page.locator("main").inner_text()
    assert "<script>window.__pwned=1</script>" in body and "\u202e" not in body
    assert "\\u202eevil\\u0000" in body and "\x00" not in body
    await page.locator("details summary").first.click()  # the payload, expanded
    await assert_inert(page, watch, dialogs)
    # and so on the project's timeline and on the dead letter's page (NUL shown as a mark)
    await page.goto(live_bus.url(f"/ui/projects/{PROJECT}"))
    await watch.wait_rendered(page.get_by_text("\\u202eevil").first)
    await page.goto(live_bus.url(f"/ui/dead-letters/{dead}"))
    await watch.wait_rendered(page.get_by_text("\\u0000").first)
    assert "<script>" in await page.locator("main").inner_text()
    await assert_inert(page, watch, dialogs)


async def test_the_action_requests_page_lists_the_clicks(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given a click recorded over HTTP on a demo project's training suggestion
    http = httpx.Client(base_url=live_bus.base_url)
    project = live_bus.projects[0]
    doc = http.get(f"/api/projects/{project}/coach/training").json()
    click = http.post(
        f"/api/projects/{project}/coach/training/actions",
        json={"version": doc["version"], "index": 0, "who": "grace"},
        headers={"Authorization": f"Bearer {live_bus.token}"},
    )
    assert click.status_code == 201, click.text
    # when the actions page opens, then the request is listed with its kind and label
    await page.goto(live_bus.url("/ui/actions"))
    row = page.locator(f'tr[data-request="{click.json()["request_id"]}"]')
    await watch.wait_rendered(row)
    text = await row.inner_text()
    assert "grace" in text and click.json()["kind"] in text and click.json()["label"] in text
    await screenshot(page, "actions")
    watch.assert_offline_and_clean()
