"""The overview in a real browser: the demo's streams, groups and services, updating live.

Given the running bus with the demo's workload, when Chromium opens ``/ui``, then every stream
and group of the pipeline is listed, each service shows its health in words, and an event
published after the page loaded changes the validator's figures without a reload.
"""

from __future__ import annotations

import redis.asyncio as aredis
from playwright.async_api import Page, expect

from services.api.ui.overview_model import HEALTH_WORDS
from shared.connections import async_redis
from shared.pipeline import PIPELINE
from shared.producer import Producer
from shared.settings import Settings
from tests.browser.conftest import BROWSER_TESTS, RENDER_TIMEOUT_MS, PageWatch, screenshot
from tests.integration.validator.helpers import good_event
from tests.live_bus import LiveBus

pytestmark = BROWSER_TESTS
#: Stream role and group of each row the demo's bus must show.
ROWS = (("events", "validator"), ("valid", "persister"), ("valid", "coach"))
#: Each outlet (the actions stream) and the group its outside reader uses (the platform's).
OUTLET_ROWS = tuple((outlet.title, outlet.group) for outlet in PIPELINE.outlets)


async def publish_one(settings: Settings) -> None:
    client: aredis.Redis = async_redis(settings)
    try:
        await Producer(client, settings.names).publish(good_event(run_id="overview-live"))
    finally:
        await client.aclose()


async def test_the_overview_shows_the_bus_and_follows_it_live(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given the running bus, when an operator opens the overview
    await page.goto(live_bus.url("/ui"))
    await watch.wait_rendered(page.locator("#overview-streams tr[data-group=validator]"))
    # then every stream and group of the pipeline is there
    for stream, group in ROWS:
        row = page.locator(f"tr[data-stream={stream}][data-group={group}]")
        await expect(row).to_have_count(1)
        await expect(row.locator("ul.consumers li")).not_to_have_count(0)
    await expect(page.locator("tr[data-stream=dead]")).to_have_count(1)
    # and so is every outlet with its reader's group (absent until the platform reads it)
    for stream, group in OUTLET_ROWS:
        row = page.locator(f"tbody[data-outlets] tr[data-stream={stream}][data-group={group}]")
        await expect(row).to_have_count(1)
    # and each service says its health in words (the demo's stages are running)
    for service in ("validator", "persister", "coach", "api"):
        word = await page.locator(f"[data-service={service}] [data-health]").inner_text()
        assert word in HEALTH_WORDS and word in ("up", "idle"), (service, word)
    # and the page is connected to its event stream
    await expect(page.locator("#overview-live")).to_have_attribute("data-state", "on")
    handled = page.locator("[data-stage=validator] .handled")
    before = await handled.get_attribute("data-handled")
    assert before and int(before) >= live_bus.valid_events + live_bus.invalid_entries
    await page.evaluate("window.overviewMarker = 'loaded once'")
    # when one more event is published
    await publish_one(live_bus.settings)
    # then the validator's figure changes on the page, without a reload
    await expect(handled).not_to_have_attribute("data-handled", before, timeout=RENDER_TIMEOUT_MS)
    assert await page.evaluate("window.overviewMarker") == "loaded once"
    # and the validator's throughput chart has drawn what it measured since
    await expect(page.locator("[data-stage=validator] svg.spark polyline")).not_to_have_count(0)
    await screenshot(page, "overview")
    watch.assert_offline_and_clean()
