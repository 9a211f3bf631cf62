"""The run page and the search box in a real browser, on a running bus with the demo.

Given the demo's nested runs (an autopilot run with its training and Pulse runs under it), when
Chromium opens the autopilot run's page, then it lists its children as links, a child's page
links back to the parent, a payload expands, and searching by a run id or an event id from the
header's box lands on the run page (at the event's row), and an entry id still on the incoming
stream is listed with a link to its run.
"""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from services.api.ui.links import run_url
from tests.browser.conftest import BROWSER_TESTS, RENDER_TIMEOUT_MS, PageWatch, screenshot
from tests.live_bus import LiveBus

pytestmark = BROWSER_TESTS


def an_autopilot(bus: LiveBus) -> tuple[str, list[str]]:
    """The demo's first autopilot run with children, and its children."""
    return next((run, kids) for run, kids in sorted(bus.runs.items()) if kids)


async def test_the_run_page_shows_its_children_and_a_child_links_back(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    parent, kids = an_autopilot(live_bus)
    # when the autopilot run's page is opened
    await page.goto(live_bus.url(run_url(parent)))
    await watch.wait_rendered(page.locator("#timeline tbody tr"))
    # then each of its children is a link in the tree
    children = page.locator("#family li.child > a")
    await expect(children).to_have_count(len(kids), timeout=RENDER_TIMEOUT_MS)
    assert sorted(await children.all_inner_texts()) == sorted(kids)
    # and a payload expands when its summary is clicked
    body = page.locator("#timeline details.body").first
    await body.locator("summary").click()
    await expect(body.locator("dl.ids")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    await screenshot(page, "run")
    # when a child is followed, its page shows the parent as a link back
    await children.filter(has_text=kids[0]).first.click()
    await page.wait_for_url(live_bus.url(run_url(kids[0])), timeout=RENDER_TIMEOUT_MS)
    back = page.locator("#family li.ancestor > a")
    await expect(back).to_have_text([parent], timeout=RENDER_TIMEOUT_MS)
    await back.click()
    await page.wait_for_url(live_bus.url(run_url(parent)), timeout=RENDER_TIMEOUT_MS)
    watch.assert_offline_and_clean()


async def test_the_search_box_finds_a_run_and_an_event(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    parent, kids = an_autopilot(live_bus)
    async with httpx.AsyncClient(base_url=live_bus.base_url) as api:
        events = (await api.get(f"/api/runs/{kids[-1]}/events")).json()["events"]
    event_id, entry_id = events[-1]["event_id"], events[-1]["source_id"]
    # when a run id is typed into the header's search box
    await page.goto(live_bus.url("/ui/search"))
    await watch.wait_rendered(page.locator("#search-empty"))
    box = page.locator("header form.search input[name=q]")
    await box.fill(parent)
    await box.press("Enter")
    # then the browser lands on that run's page
    await page.wait_for_url(live_bus.url(run_url(parent)), timeout=RENDER_TIMEOUT_MS)
    await expect(page.locator("h1 .run-id")).to_have_text(parent, timeout=RENDER_TIMEOUT_MS)
    # and an event id lands on its run's page, at its row
    await box.fill(event_id)
    await box.press("Enter")
    await page.wait_for_url(f"**{run_url(kids[-1])}#event-{event_id}", timeout=RENDER_TIMEOUT_MS)
    await expect(page.locator(f"#timeline tr[id='event-{event_id}']")).to_be_in_viewport(
        timeout=RENDER_TIMEOUT_MS
    )
    # and its incoming entry id, still on the stream, is listed with a link to its run
    await box.fill(entry_id)
    await box.press("Enter")
    hit = page.locator("#hits li.hit-stream_entry")
    await expect(hit).to_contain_text("still on the incoming stream", timeout=RENDER_TIMEOUT_MS)
    await screenshot(page, "search")
    await hit.get_by_role("link", name=kids[-1]).click()
    await page.wait_for_url(live_bus.url(run_url(kids[-1])), timeout=RENDER_TIMEOUT_MS)
    watch.assert_offline_and_clean()
