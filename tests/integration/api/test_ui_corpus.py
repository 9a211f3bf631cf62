"""The whole bad-input corpus on the dashboard: every page that shows its text renders it inert.

Given every case of the bad-input corpus (`tests.unit.badinput.corpus`) sent through the real
validator, the accepted ones stored in the app's history as the persister stores them and the
rejected ones left on the dead-letter stream, when the dashboard's pages that show producer
text are requested (each dead letter in full, the console's every page, each run, each
project's timeline, a search for each run id), then each answers with a page (never a 500),
and that page holds no markup of the producers' (no script but the app's own, hashed ones; no
event-handler attribute; no ``javascript:`` link) and no control or bidirectional-format
character left to act (they are shown as ``\\u…`` marks).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from services.api.static import URL_PREFIX as VENDOR_PREFIX
from services.api.ui.assets import URL_PREFIX as OWN_PREFIX
from services.api.ui.links import run_url
from shared.models import ValidEnvelope
from shared.settings import Settings
from tests.integration.badinput.conftest import ValidatorBus
from tests.unit.badinput.corpus import corpus

pytestmark = pytest.mark.integration

Seed = Callable[..., Awaitable[int]]
#: Control characters a page's text may hold raw (its own layout).
LAYOUT = {"\n", "\t"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "hx-get", "hx-post", "sse-connect"}
#: The one non-http URL a page has: its empty icon (`base.html`).
OWN_ICON = ("link", "href", "data:,")


class Inertness(HTMLParser):
    """What in a page could act: scripts, handlers, script URLs (each recorded as a problem)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            src = found.get("src") or ""
            if not src.startswith((OWN_PREFIX + "/", VENDOR_PREFIX + "/")) or not found.get(
                "integrity"
            ):
                self.problems.append(f"a script that is not the app's own: {attrs}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"an event handler: {name}={value!r}")
            scheme = urlsplit((value or "").strip()).scheme.lower()
            if (tag, name, value) == OWN_ICON:
                continue
            if name in URL_ATTRIBUTES and scheme not in ("", "http", "https"):
                self.problems.append(f"a {scheme}: URL in {tag} {name}")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        # Text is what a reader sees: there, a control or format character must be a mark.
        # (Attribute values, such as the exact run id in data-run, are never displayed.)
        raw = {ch for ch in data if ch not in LAYOUT and unicodedata.category(ch) in ("Cc", "Cf")}
        self.problems += [f"a raw U+{ord(ch):04X} in text" for ch in sorted(raw)]


def problems_of(page: str) -> list[str]:
    """Everything in `page` that is not inert text."""
    parser = Inertness()
    parser.feed(page)
    parser.close()
    return parser.problems


def the_corpus_through_the_validator(
    settings: Settings, client: redis.Redis
) -> tuple[list[ValidEnvelope], list[str]]:
    """Every corpus case through the real validator: the accepted envelopes, the dead ids."""
    bus = ValidatorBus(settings.model_copy(update={"block_ms": 50}), client)
    bus.start()
    try:
        ids = bus.send(case.fields for case in corpus())
        bus.wait_accounted(ids)
    finally:
        bus.stop()
    dead = [entry.decode() for entry, _ in client.xrange(settings.names.dead)]  # type: ignore[union-attr]
    assert len(bus.valid) + len(dead) == len(ids) and bus.valid and dead
    return list(bus.valid.values()), dead


async def get_page(http: httpx.AsyncClient, url: str, failures: dict[str, list[str]]) -> str:
    """GET `url` (following a search's redirect); its problems go into `failures`."""
    reply = await http.get(url, follow_redirects=True)
    found = [] if reply.status_code < 500 else [f"HTTP {reply.status_code}"]
    if not reply.headers.get("content-type", "").startswith("text/html"):
        found.append(f"not a page: {reply.headers.get('content-type')}")
    found += problems_of(reply.text)
    if found:
        failures[url] = found
    return reply.text


async def test_every_page_showing_the_corpus_renders_it_inert(
    http: httpx.AsyncClient, seed_history: Seed, settings: Settings, sync_client: redis.Redis
) -> None:
    # given the corpus through the validator: accepted ones stored, rejected ones dead-lettered
    accepted, dead = the_corpus_through_the_validator(settings, sync_client)
    assert await seed_history(*accepted) > 0
    failures: dict[str, list[str]] = {}
    # when each dead letter's page is opened, and the console page after page
    for dead_id in dead:
        await get_page(http, f"/ui/dead-letters/{dead_id}", failures)
    url: str | None = "/ui/dead-letters"
    pages = 0
    while url is not None:
        page = await get_page(http, url, failures)
        older = re.search(r'href="(/ui/dead-letters\?[^"]*before_id=[^"]*)"', page)
        url, pages = (older.group(1).replace("&amp;", "&") if older else None), pages + 1
    assert pages >= len(dead) // 50
    # and each run, each project's timeline, and a search for each run id
    runs = sorted({str(envelope.event["run_id"]) for envelope in accepted})
    projects = sorted({int(p) for e in accepted if (p := e.event.get("project_id")) is not None})
    for run_id in runs:
        await get_page(http, run_url(run_id), failures)
        await get_page(http, str(httpx.URL("/ui/search", params={"q": run_id})), failures)
    for project_id in projects:
        await get_page(http, f"/ui/projects/{project_id}?limit=500", failures)
    # then every one of them is a page with nothing in it that acts
    assert runs and projects
    assert failures == {}, "\n".join(f"{u}: {p}" for u, p in failures.items())
