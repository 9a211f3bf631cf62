"""The dead-letter console in a real browser: the live tail, pause and resume, a redrive from the
page with its preview and confirmation, filters in the URL, and read-only mode.

Given the running bus with the demo's workload (its dead letters included), when Chromium opens
``/ui/dead-letters`` and the test publishes invalid entries of its own through the real
validator, then each appears at the top of the table without a reload (held and counted while
paused), a redrive of one of them moves it back to the incoming stream and the audit log shows
it, a filter URL opened fresh shows the same filter, and a dashboard without a token has no
write control and refuses the write routes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
import redis
from playwright.async_api import Page, expect

from shared.wire import DATA_FIELD, REDRIVEN_FROM_FIELD, as_text
from tests.browser.conftest import BROWSER_TESTS, PageWatch, screenshot, sign_in
from tests.conftest import REDIS_URL
from tests.live_api import LiveApi
from tests.live_bus import LiveBus

pytestmark = BROWSER_TESTS
WAIT_MS = 20_000


def publish_invalid(bus: LiveBus, code: str) -> str:
    """XADD an event with an unknown reason code to the incoming stream; its entry id."""
    body = orjson.dumps(
        {
            "project_id": 1,
            "run_id": f"dl-{code}",
            "stage": "training",
            "severity": "error",
            "reason_code": code,
            "ts": "2026-05-01T12:00:00Z",
            "summary": f"browser {code}",
        }
    )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return as_text(client.xadd(bus.names.events, {DATA_FIELD: body}))
    finally:
        client.close()


def fresh_code() -> str:
    return f"browser_{uuid.uuid4().hex[:10]}"


def dead_id_of(bus: LiveBus, code: str, timeout: float = WAIT_MS / 1000) -> str:
    """The dead-letter id of the entry rejected for `code` (the API's listing), polled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = httpx.get(
            bus.url("/api/dead-letters"), params={"reason": f"invalid_reason_code:{code}"}
        ).json()["items"]
        if items:
            return str(items[-1]["id"])
        time.sleep(0.1)
    pytest.fail(f"no dead letter for {code} within {timeout}s")


def row(source_id: str) -> str:
    return f'#dl-rows tr[data-source-id="{source_id}"]'


async def test_a_new_dead_letter_appears_live_and_pause_holds_it_back(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given the console open on the demo's dead letters (signed in: the screenshot shows all)
    await sign_in(page, live_bus)
    await page.goto(live_bus.url("/ui/dead-letters"))
    await watch.wait_rendered(page.locator("#dl-rows tr"))
    # when a dead letter is made after the page loaded, then it shows up top without a reload
    first = publish_invalid(live_bus, fresh_code())
    await expect(page.locator("#dl-rows tr").first).to_have_attribute(
        "data-source-id", first, timeout=WAIT_MS
    )
    # when the tail is paused, a new one is counted and not inserted
    await page.click("#dl-pause")
    await expect(page.locator("#dl-live-word")).to_have_text("paused")
    second = publish_invalid(live_bus, fresh_code())
    await expect(page.locator("#dl-pending")).to_have_text("1 new while paused", timeout=WAIT_MS)
    assert await page.locator(row(second)).count() == 0
    # and resuming catches up: it goes to the top
    await page.click("#dl-pause")
    await expect(page.locator("#dl-rows tr").first).to_have_attribute("data-source-id", second)
    await expect(page.locator("#dl-pending")).to_have_text("")
    await screenshot(page, "dead-letters")
    watch.assert_offline_and_clean()


async def test_the_live_tail_respects_the_filter(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    mine, other = fresh_code(), fresh_code()
    await page.goto(live_bus.url(f"/ui/dead-letters?code=invalid_reason_code:{mine}"))
    await watch.wait_rendered(page.locator("#dl-empty"))
    skipped = publish_invalid(live_bus, other)
    shown = publish_invalid(live_bus, mine)
    await watch.wait_rendered(page.locator(row(shown)))
    assert await page.locator(row(skipped)).count() == 0
    assert await page.locator("#dl-rows tr").count() == 1
    watch.assert_offline_and_clean()


async def test_a_redrive_from_the_page_moves_it_back_and_the_audit_shows_it(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    await sign_in(page, live_bus)
    # given a dead letter of the test's own, shown by its code's filter
    code = fresh_code()
    publish_invalid(live_bus, code)
    dead_id = dead_id_of(live_bus, code)
    await page.goto(live_bus.url(f"/ui/dead-letters?code=invalid_reason_code:{code}"))
    # when the operator selects it and previews a redrive
    await page.check(f'#dl-rows input[name=id][value="{dead_id}"]')
    await page.click("#dl-redrive-selected")
    # then the preview names it, and nothing moved yet
    await expect(page.locator("#dl-preview-count")).to_contain_text(
        "1 dead letter", timeout=WAIT_MS
    )
    await expect(page.locator("#dl-preview-ids li")).to_have_text([dead_id])
    assert redriven(live_bus, dead_id) == 0
    # when they confirm, then it is back on the incoming stream, with an audit record
    await page.click("#dl-confirm")
    await expect(page.locator("#dl-done")).to_contain_text("1 moved back", timeout=WAIT_MS)
    assert redriven(live_bus, dead_id) == 1
    audit_id = await page.locator("#dl-audit-id").inner_text()
    await page.click("text=audit log")
    record = page.locator(f'#dl-audit tr[data-id="{audit_id}"]')
    await expect(record).to_have_attribute("data-dry-run", "no", timeout=WAIT_MS)
    await expect(record).to_contain_text("ada")
    await expect(record).to_contain_text(dead_id)
    await screenshot(page, "dead-letters-audit")
    watch.assert_offline_and_clean()


def redriven(bus: LiveBus, dead_id: str) -> int:
    """Entries of the incoming stream that a redrive of `dead_id` put there."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        entries: Any = client.xrevrange(bus.names.events, count=500)
        return sum(1 for _, f in entries if f.get(REDRIVEN_FROM_FIELD) == dead_id.encode())
    finally:
        client.close()


async def test_a_filter_url_opened_fresh_shows_the_same_filter(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    await page.goto(live_bus.url("/ui/dead-letters"))
    await watch.wait_rendered(page.locator("#dl-rows tr"))
    # when a filter is set in the form, then the results change and the URL says so
    await page.fill("#dl-filters input[name=family]", "invalid_reason_code")
    await page.select_option("#dl-filters select[name=stage]", "validator")
    await page.click("#dl-filters button[type=submit]")
    await page.wait_for_url("**/ui/dead-letters?*family=invalid_reason_code*stage=validator*")
    url = page.url
    # when that URL is opened fresh, then the form and the rows are the same filter's
    await page.goto(url)
    await expect(page.locator("#dl-filters input[name=family]")).to_have_value(
        "invalid_reason_code"
    )
    await expect(page.locator("#dl-filters select[name=stage]")).to_have_value("validator")
    for codes in await page.locator("#dl-rows tr td:nth-child(3)").all_inner_texts():
        assert "invalid_reason_code" in codes
    watch.assert_offline_and_clean()


async def test_one_dead_letter_in_full(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    code = fresh_code()
    source_id = publish_invalid(live_bus, code)
    dead_id = dead_id_of(live_bus, code)
    await page.goto(live_bus.url(f"/ui/dead-letters?code=invalid_reason_code:{code}"))
    await page.click(f'{row(source_id)} a[href^="/ui/dead-letters/"]')
    await expect(page.locator("#dl-id")).to_have_text(dead_id, timeout=WAIT_MS)
    await expect(page.locator("#dl-source-id")).to_have_text(source_id)
    await expect(page.locator("#dl-original-text")).to_contain_text(code)
    await expect(page.locator("#dl-original-hex")).to_contain_text("7b 22")
    await screenshot(page, "dead-letter")
    watch.assert_offline_and_clean()


async def test_read_only_shows_no_write_control_and_refuses_writes(
    live_api: LiveApi, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    await page.goto(live_api.url("/ui/dead-letters"))
    await watch.wait_rendered(page.locator("#dl-live"))
    for control in ("#dl-redrive-selected", "#dl-purge-filter", "input[name=id]", "#dl-all"):
        assert await page.locator(control).count() == 0, control
    for path in ("redrive/preview", "redrive", "purge/preview", "purge"):
        reply = await page.request.post(
            live_api.url(f"/ui/dead-letters/{path}"), form={"scope": "filter", "all": "1"}
        )
        assert reply.status == 403, path
    watch.assert_offline_and_clean()
