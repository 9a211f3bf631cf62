"""Browser fixtures: real headless Chromium (Debian's) on a live runbus API, offline-checked.

Reusable by every browser test (the docs pages today, the dashboard next):

- ``browser``: one Chromium for the session, driven by Playwright's async Python API through
  ``executable_path`` (Playwright's own browser download cannot reach the internet: never run
  ``playwright install``). ``make test`` installs it (scripts/ensure-browser.sh); a missing
  browser fails the tests, it never skips them. It lives on pytest-asyncio's session loop
  (Playwright's sync API would leave its loop marked running for every later asyncio test), so
  a browser test module sets ``pytestmark = BROWSER_TESTS``.
- ``live_api``: ``runbus run api`` (`tests.live_api.run_api`) under a fresh namespace, one per
  test module (``run_api`` starts one for a single test).
- ``watched_page``: a page whose every request and page error is recorded; requests that would
  leave loopback are aborted (and recorded), so ``assert_offline_and_clean`` can fail on them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import redis
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Playwright,
    Request,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bench.pages import CHROMIUM_ARGS
from shared.names import Names
from tests.conftest import REDIS_URL
from tests.live_api import LiveApi, run_api
from tests.live_bus import LiveBus, start_live_bus

CHROMIUM = Path(os.environ.get("RUNBUS_TEST_CHROMIUM", "/usr/bin/chromium"))
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
RENDER_TIMEOUT_MS = 20_000


def is_loopback(url: str) -> bool:
    """True for URLs a page may load: loopback HTTP(S), and in-page data:/blob:/about: ones."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOOPBACK_HOSTS


#: Put this on every browser test module: the browser lives on the session's event loop.
BROWSER_TESTS = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    """Playwright's driver for the session."""
    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    """Debian's headless Chromium for the session (fails loudly when it is not installed)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"browser tests need Chromium at {CHROMIUM}: run `bash scripts/ensure-browser.sh` "
            "(make test does) or set RUNBUS_TEST_CHROMIUM"
        )
    chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    await chromium.close()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """One live API per test module (start-up takes seconds), with a namespace of its own.

    Its keys are removed afterwards. A test that needs an API of its own uses ``run_api``.
    """
    namespace = f"t{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # fail loudly: never skip a missing server
        pytest.fail(f"browser tests need Redis at {REDIS_URL}: {exc}")
    try:
        with run_api(namespace, tmp_path_factory.mktemp("live_api")) as api:
            yield api
    finally:
        for pattern in Names(namespace).key_patterns:
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
        client.close()


@dataclass
class PageWatch:
    """What a page did: every request URL, the ones refused for leaving loopback, and errors
    (uncaught exceptions and console errors, a failed load included)."""

    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        """Record what `page` requests and every error it reports from now on."""
        page.on("request", self._request)
        page.on("pageerror", self._uncaught)
        page.on("console", self._console)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _uncaught(self, error: PlaywrightError) -> None:
        self.errors.append(f"uncaught: {error}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    async def wait_rendered(self, locator: Locator, timeout_ms: float = RENDER_TIMEOUT_MS) -> None:
        """Wait until `locator` shows; on time-out fail with what the page was refused."""
        try:
            await locator.first.wait_for(timeout=timeout_ms)
        except PlaywrightTimeout:
            pytest.fail(
                f"{locator} not rendered within {timeout_ms} ms; "
                f"refused (left loopback): {self.foreign}; errors: {self.errors}"
            )

    def assert_offline_and_clean(self) -> None:
        """Nothing left loopback and no script failed."""
        assert self.requests, "the page made no request at all"
        assert not self.foreign, f"requests left loopback: {self.foreign}"
        assert all(is_loopback(url) for url in self.requests), self.requests
        assert not self.errors, f"page errors: {self.errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def watched_page(browser: Browser) -> AsyncIterator[tuple[Page, PageWatch]]:
    """A fresh page (own context) whose requests and errors are recorded."""
    context = await browser.new_context()
    watch = PageWatch()

    async def guard(route: Route) -> None:
        if is_loopback(route.request.url):
            await route.continue_()
        else:  # never wait on the network: refuse, record, and fail the test afterwards
            watch.foreign.append(route.request.url)
            await route.abort()

    await context.route("**/*", guard)
    page = await context.new_page()
    watch.attach(page)
    yield page, watch
    await context.close()


@pytest.fixture(scope="session")
def live_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBus]:
    """One whole running bus (``runbus run all``, API token set) with the demo's workload
    processed, shared by every dashboard test: tests that write use their own entries."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    with start_live_bus(tmp_path_factory.mktemp("live_bus"), namespace) as bus:
        yield bus


async def sign_in(page: Page, bus: LiveBus, who: str = "ada") -> None:
    """Sign `page`'s context in to the bus's dashboard with its token, through the form."""
    await page.goto(bus.url("/ui/login"))
    await page.fill("input[name=token]", bus.token)
    await page.fill("input[name=who]", who)
    await page.click("button[type=submit]")
    await page.wait_for_url(bus.url("/ui"))


#: Where the tests write each page's screenshot; the docs show them.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


async def screenshot(page: Page, name: str) -> None:
    """Save a full-page screenshot as ``docs/img/ui-<name>.png`` (the docs show it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"ui-{name}.png"), full_page=True)
