"""The search page over HTTP: one box for any id, hits as links, one hit a redirect.

Given runs and events seeded straight into the app's history, when ``/ui/search?q=`` is asked
for an id, then exactly one match sends the browser to its page (303), several are listed as
links, nothing is a friendly empty page, and hostile queries (NUL, RTL overrides, markup, 10k
characters) are an empty page or a 422 page, never a 500.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.api.ui.links import event_url, project_url, run_url
from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration

Seed = Callable[..., Awaitable[int]]


def hit_links(page: str) -> dict[str, str]:
    """Each hit's kind and link."""
    pattern = r'<li class="hit hit-(\w+)"[^>]*>\s*<span[^>]*>[^<]*</span>\s*<a href="([^"]*)"'
    found = re.findall(pattern, page)
    return {kind: html.unescape(href) for kind, href in found}


async def test_a_run_id_goes_straight_to_the_run_page(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    await seed_history(brewslm("team/run 1%", at(1), event_id="ev-1"))
    reply = await http.get("/ui/search", params={"q": "  team/run 1%  "})
    assert reply.status_code == 303 and reply.headers["location"] == run_url("team/run 1%")
    assert (await http.get(reply.headers["location"])).status_code == 200


async def test_an_event_id_goes_to_its_row_on_the_run_page(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    await seed_history(pulse("run-s", at(1), event_id="evt-unique-42"))
    reply = await http.get("/ui/search", params={"q": "evt-unique-42"})
    assert reply.status_code == 303
    assert reply.headers["location"] == event_url("run-s", "evt-unique-42")
    assert reply.headers["location"].endswith("#event-evt-unique-42")


async def test_an_id_naming_several_things_lists_each_with_its_link(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given a run named "7" in project 7
    await seed_history(brewslm("7", at(1), project_id=7))
    # when "7" is searched for, both the run and the project are offered
    reply = await http.get("/ui/search?q=7")
    assert reply.status_code == 200
    links = hit_links(reply.text)
    assert links["run"] == run_url("7") and links["project"] == project_url(7)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "no-such-id",
        "nul\x00byte",
        "\u202egnp.exe",
        "<script>alert(1)</script>",
        "9" * 40,
    ],
)
async def test_nothing_found_is_a_friendly_empty_page(http: httpx.AsyncClient, query: str) -> None:
    reply = await http.get("/ui/search", params={"q": query})
    assert reply.status_code == 200, reply.text
    page = reply.text
    assert 'id="search-empty"' in page or 'id="search-none"' in page
    assert "<script>alert" not in page and "\u202e" not in page
    assert "\x00" not in page


async def test_a_query_longer_than_any_id_is_a_422_page(http: httpx.AsyncClient) -> None:
    reply = await http.get("/ui/search", params={"q": "x" * 10_000})
    assert reply.status_code == 422 and 'data-error="invalid_request"' in reply.text
    assert reply.headers["content-type"].startswith("text/html")
