"""Browser-side render times of dashboard pages in Debian's Chromium (Playwright).

Never ``playwright install``: the browser is the system's (``executable_path``). Each load runs
in a fresh context, so it is a first visit (empty cache, no cookie); one untimed load first
starts the browser's renderer machinery. See `bench.pages` for what is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from playwright.async_api import Browser, async_playwright

from bench.pages import (
    BROWSER_TIMEOUT_MS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAINTED_JS,
    TIMING_JS,
    PageSpec,
    medians,
)


async def load_once(browser: Browser, url: str) -> dict[str, Any]:
    """Load `url` in a fresh context; the Performance API's figures (ms)."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        response = await page.goto(url, wait_until="load", timeout=BROWSER_TIMEOUT_MS)
        if response is None or response.status != 200:
            raise RuntimeError(f"{url}: {response.status if response else 'no response'}")
        await page.wait_for_function(PAINTED_JS, timeout=BROWSER_TIMEOUT_MS)
        found: dict[str, Any] = await page.evaluate(TIMING_JS)
        return found
    finally:
        await context.close()


async def browser_times(
    base_url: str, specs: Sequence[PageSpec], loads: int
) -> dict[str, dict[str, Any]]:
    """Median browser figures of each page over `loads` fresh loads."""
    if not CHROMIUM.is_file():
        raise RuntimeError(f"no Chromium at {CHROMIUM} (scripts/ensure-browser.sh installs it)")
    found: dict[str, dict[str, Any]] = {}
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            if specs:
                await load_once(browser, base_url + specs[0].path)  # untimed: warm the browser
            for spec in specs:
                runs = [await load_once(browser, base_url + spec.path) for _ in range(loads)]
                found[spec.name] = medians(runs)
        finally:
            await browser.close()
    return found
