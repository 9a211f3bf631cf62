"""The dashboard's shell in a real browser: it renders offline, signs in, and stays read-only
without a token.

Given a running bus with the demo's workload (and a token), and a bare API without one, when
Chromium opens the dashboard, then every asset comes from the app, no script fails, signing in
shows who is signed in, and the read-only dashboard offers no sign-in at all.
"""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.conftest import BROWSER_TESTS, PageWatch, sign_in
from tests.live_api import LiveApi
from tests.live_bus import LiveBus

pytestmark = BROWSER_TESTS


async def test_the_dashboard_renders_offline_and_signs_in(
    live_bus: LiveBus, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    # given the running bus, when an operator opens the dashboard
    await page.goto(live_bus.url("/ui"))
    await watch.wait_rendered(page.locator("h1"))
    # then it is read-only until they sign in
    assert await page.locator("#access .badge").inner_text() == "read-only"
    await sign_in(page, live_bus)
    await watch.wait_rendered(page.get_by_text("signed in as ada"))
    watch.assert_offline_and_clean()


async def test_without_a_token_there_is_nothing_to_sign_in_to(
    live_api: LiveApi, watched_page: tuple[Page, PageWatch]
) -> None:
    page, watch = watched_page
    await page.goto(live_api.url("/ui"))
    await watch.wait_rendered(page.locator("h1"))
    assert await page.get_by_text("sign in").count() == 0
    await page.goto(live_api.url("/ui/login"))
    await watch.wait_rendered(page.get_by_text("This dashboard is read-only"))
    assert await page.locator("input[name=token]").count() == 0
    watch.assert_offline_and_clean()
