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
import redis

from services.api.ui.links import dead_letter_url, event_url, project_url, run_url
from shared.settings import Settings
from shared.wire import DATA_FIELD
from tests.integration.history.factory import at, brewslm, pulse
from tests.unit.ops.builders import brewslm_body, dead_fields

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


async def test_a_dead_letter_id_goes_to_the_dead_letter_page(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    entry = "1700000000001-0"
    sync_client.xadd(settings.names.dead, dead_fields(["malformed_json"]), id=entry)  # type: ignore[arg-type]
    reply = await http.get("/ui/search", params={"q": entry})
    assert reply.status_code == 303 and reply.headers["location"] == dead_letter_url(entry)


async def test_a_rejected_entry_s_id_goes_to_its_dead_letter_and_the_api_says_so(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given the dead letter of incoming entry `source`, which is gone from the incoming stream
    source, dead = "1700000000005-0", "1700000000009-0"
    fields = dead_fields(["malformed_json"], source_id=source)
    sync_client.xadd(settings.names.dead, fields, id=dead)  # type: ignore[arg-type]
    # when the box is asked for the source id, it goes to the dead letter's page
    reply = await http.get("/ui/search", params={"q": source})
    assert reply.status_code == 303 and reply.headers["location"] == dead_letter_url(dead)
    # and the API (the same call) gives the hit matched by its source id
    (hit,) = (await http.get("/api/search", params={"q": source})).json()["hits"]
    assert (hit["kind"], hit["matched"], hit["entry_id"]) == ("dead_letter", "source_id", dead)


async def test_a_source_id_among_other_hits_says_what_it_matched(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given an id that is both a dead letter's own and another dead letter's source id
    entry, later = "1700000000005-0", "1700000000009-0"
    sync_client.xadd(settings.names.dead, dead_fields(["malformed_json"]), id=entry)  # type: ignore[arg-type]
    fields = dead_fields(["malformed_json"], source_id=entry)
    sync_client.xadd(settings.names.dead, fields, id=later)  # type: ignore[arg-type]
    # when searched, both are listed, the second saying it is the entry's dead letter
    reply = await http.get("/ui/search", params={"q": entry})
    assert reply.status_code == 200 and reply.text.count('<li class="hit hit-dead_letter"') == 2
    assert "the dead letter of the entry that had this id" in reply.text


async def test_an_entry_still_on_its_way_is_listed_with_its_stream_and_run(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given an entry on the incoming stream that no validator took yet
    entry = "1700000000002-0"
    body = brewslm_body(run_id="exp-<b>", reason_code=None, severity="info")
    sync_client.xadd(settings.names.events, {DATA_FIELD: body}, id=entry)
    # when its id is searched for, it is listed (it has no page of its own), with its run
    reply = await http.get("/ui/search", params={"q": entry})
    assert reply.status_code == 200
    assert '<li class="hit hit-stream_entry"' in reply.text
    assert "still on the incoming stream" in reply.text
    assert f'run <a href="{html.escape(run_url("exp-<b>"))}">exp-&lt;b&gt;</a>' in reply.text


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
