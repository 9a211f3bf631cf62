"""Stories of the search box: one text, every thing it names, on the real Redis and both
history stores (the library), then over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import redis.asyncio as aredis

from services.api.search import InvalidSearch, SearchResult, search
from services.history import HistoryStore, store_for_url
from services.ops.lookup import SOURCE_PAGE, SOURCE_PAGES
from services.validator.logic import envelope
from shared.names import Names
from shared.settings import Settings
from shared.validation import Accepted, validate_document
from shared.wire import DATA_FIELD, parse_envelope
from tests.conftest import postgres_schema
from tests.integration.history.factory import TAXONOMY, at, brewslm, pulse
from tests.integration.validator.helpers import route
from tests.unit.ops.builders import brewslm_body, dead_fields

pytestmark = pytest.mark.integration

ENTRY = "1700000000123-0"  # the incoming entry id of the event stored without an event id


def kinds(result: SearchResult) -> list[tuple[str, str]]:
    return [(hit.kind, hit.matched) for hit in result.hits]


def xadd(client: redis.Redis, stream: str, fields: dict[bytes, bytes], entry: str = "*") -> str:
    new: Any = client.xadd(stream, fields, id=entry)  # type: ignore[arg-type]
    return str(new.decode())


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryStore]:
    """A migrated history on each backend in turn (PostgreSQL: a schema of its own)."""
    if request.param == "sqlite":
        history = store_for_url(f"sqlite:///{tmp_path / 'search.db'}")
        await history.open()
        await history.migrate()
        yield history
        await history.close()
        return
    with postgres_schema(f"search_{uuid.uuid4().hex[:12]}", "search stories") as url:
        history = store_for_url(url)
        await history.open()
        await history.migrate()
        yield history
        await history.close()


@pytest.fixture
async def seeded(store: HistoryStore, sync_client: redis.Redis, namespace: str) -> dict[str, str]:
    """History: a given event id, a derived one, two runs of project 7; the bus: a dead letter,
    an incoming and a valid entry; the coach: project 42."""
    names = Names(namespace)
    await store.insert_batch([
        brewslm("run-s", at(1), event_id="given-1"),
        pulse("run-child", at(2), parent_run_id="run-s", source_id=ENTRY),
    ])  # fmt: skip
    valid = parse_envelope(_body(pulse("run-v", at(3), event_id="on-valid").event))
    sync_client.sadd(names.coach_projects, "42")
    # distinct ids: each stream numbers its own entries, so "*" could give all three one id
    incoming = {DATA_FIELD: brewslm_body(event_id="in-1", run_id="r-in")}
    return {
        "dead": xadd(sync_client, names.dead, dead_fields(["malformed_json"]), "1700000000001-0"),
        "incoming": xadd(sync_client, names.events, incoming, "1700000000002-0"),
        "valid": xadd(
            sync_client, names.valid, {DATA_FIELD: _body(valid.event, "on-valid")},
            "1700000000003-0",
        ),
    }  # fmt: skip


def _body(event: dict[str, Any], event_id: str | None = None) -> bytes:
    result = validate_document({**event, **({"event_id": event_id} if event_id else {})}, TAXONOMY)
    assert isinstance(result, Accepted)
    return envelope(result.event, "1-0", "1-0", TAXONOMY.version, datetime.now(UTC))


async def test_each_kind_of_id_is_found(
    store: HistoryStore, async_client: aredis.Redis, namespace: str, seeded: dict[str, str]
) -> None:
    names = Names(namespace)

    async def find(q: str) -> SearchResult:
        return await search(async_client, names, store, q)

    # a stored event by its event id, a run, a project of the history and one of the coach
    given = await find("given-1")
    assert kinds(given) == [("event", "event_id")]
    assert (given.hits[0].run_id, given.hits[0].project_id, given.hits[0].ts) == ("run-s", 7, at(1))
    assert kinds(await find("run-s")) == [("run", "run_id")]
    assert (await find("run-s")).hits[0].ts == at(1)
    assert kinds(await find("7")) == kinds(await find("42")) == [("project", "project_id")]
    assert (await find("43")).hits == []
    # an incoming entry id finds the event the validator derived from it (blanks ignored)
    derived = await find(f" {ENTRY}\n")
    assert kinds(derived) == [("event", "derived_event_id")]
    assert (derived.hits[0].event_id, derived.hits[0].run_id) == (f"evt-{ENTRY}", "run-child")
    assert kinds(await find(f"evt-{ENTRY}")) == [("event", "event_id")]
    # entries still on the bus: a dead letter, an incoming entry, a valid one, with their ids
    dead = (await find(seeded["dead"])).hits
    assert [(h.kind, h.stream, h.entry_id, h.run_id) for h in dead] == [
        ("dead_letter", "dead", seeded["dead"], "exp-42")
    ]
    (incoming,) = (await find(seeded["incoming"])).hits
    assert (incoming.stream, incoming.event_id, incoming.run_id) == ("events", "in-1", "r-in")
    (valid,) = (await find(seeded["valid"])).hits
    assert (valid.kind, valid.stream, valid.event_id, valid.run_id) == (
        "stream_entry", "valid", "on-valid", "run-v",
    )  # fmt: skip
    # and a stored event with a producer's id is not found by its source entry id: no index
    assert (await find("1-0")).hits == []


@pytest.mark.parametrize(
    "q",
    [
        "\x00", "run\x00s", "é" * 256, "%", "'; DROP TABLE history; --", "*", "evt-%",
        "18446744073709551616-0", "0-0", "1023:1-0", "1024:1-0", "-1", "9" * 30, "١٢",
        "\u202eevt", " ", "\ufdd0run-s",
    ],
)  # fmt: skip
async def test_hostile_text_is_searched_safely(
    store: HistoryStore, async_client: aredis.Redis, namespace: str, seeded: dict[str, str], q: str
) -> None:
    result = await search(async_client, Names(namespace), store, q)
    assert result.q == q and result.hits == []


@pytest.mark.parametrize("q", ["", "a" * 257, "\ud800"])
async def test_a_text_no_id_can_be_is_refused(
    store: HistoryStore, async_client: aredis.Redis, namespace: str, q: str
) -> None:
    with pytest.raises(InvalidSearch) as caught:
        await search(async_client, Names(namespace), store, q)
    assert caught.value.code == "invalid_search"


async def test_a_plain_entry_id_is_looked_for_in_every_partition(
    store: HistoryStore, async_client: aredis.Redis, sync_client: redis.Redis, namespace: str
) -> None:
    # Given three partitions: the same entry id on partition 2's incoming stream and as a
    # dead letter of partition 0, and an event stored with the id derived on partition 2
    names = Names(namespace, partitions=3)
    xadd(sync_client, names.partition(2).events, {DATA_FIELD: brewslm_body()}, ENTRY)
    xadd(sync_client, names.partition(0).dead, dead_fields(["malformed_json"]), ENTRY)
    doc = {**orjson.loads(brewslm_body()), "severity": "info", "reason_code": None}
    accepted = validate_document(doc, TAXONOMY)
    assert isinstance(accepted, Accepted)
    body = envelope(accepted.event, ENTRY, ENTRY, TAXONOMY.version, datetime.now(UTC), 2)
    await store.insert_batch([parse_envelope(body)])
    # When searched plain, then qualified
    plain = await search(async_client, names, store, ENTRY)
    qualified = await search(async_client, names, store, f"2:{ENTRY}")
    # Then the plain id finds all three, each with its partition; the qualified one its own
    assert [(h.kind, h.partition, h.entry_id or h.event_id) for h in plain.hits] == [
        ("event", None, f"evt-2:{ENTRY}"),
        ("dead_letter", 0, f"0:{ENTRY}"),
        ("stream_entry", 2, f"2:{ENTRY}"),
    ]
    assert [h.kind for h in qualified.hits] == ["event", "stream_entry"]


async def test_a_rejected_entry_is_found_by_its_incoming_id_once_the_entry_is_gone(
    store: HistoryStore, async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings
) -> None:
    names = settings.names
    # Given a malformed entry, dead-lettered by the real validator
    source = xadd(sync_client, names.events, {DATA_FIELD: b"{not json"})
    await route(sync_client, settings, 1)
    ((dead_id, _),) = sync_client.xrange(names.dead)
    # and the incoming stream trimmed (the entry is gone: no XRANGE of its id finds it)
    sync_client.xtrim(names.events, maxlen=0)
    # When the id the producer's XADD returned is searched
    result = await search(async_client, names, store, source)
    # Then its dead letter is found by the source id it records
    assert [(h.kind, h.matched, h.stream, h.entry_id) for h in result.hits] == [
        ("dead_letter", "source_id", "dead", dead_id.decode())
    ]


async def test_the_source_id_lookup_reads_a_bounded_window_from_the_ids_millisecond(
    store: HistoryStore, async_client: aredis.Redis, sync_client: redis.Redis, namespace: str
) -> None:
    names, source, bound = Names(namespace), "1700000005000-3", SOURCE_PAGE * SOURCE_PAGES
    of_source = dead_fields(["malformed_json"], source_id=source)
    # Given a dead letter of the source written before its millisecond (the bus never does)
    xadd(sync_client, names.dead, of_source, "1700000004999-0")
    # one in its millisecond (the window starts at <ms>-0), then others' up to the bound
    first = xadd(sync_client, names.dead, of_source, "1700000005000-1")
    other = dead_fields(["malformed_json"], source_id="1-0")
    with sync_client.pipeline(transaction=False) as pipe:
        for seq in range(bound - 2):
            pipe.xadd(names.dead, other, id=f"1700000006000-{seq}")  # type: ignore[arg-type]
        pipe.execute()
    # the last dead letter the window holds, and one past it
    last = xadd(sync_client, names.dead, of_source, "1700000007000-0")
    xadd(sync_client, names.dead, of_source, "1700000007000-1")
    # When the source id is searched
    hits = (await search(async_client, names, store, source)).hits
    # Then exactly the dead letters of the window are found
    assert [(h.matched, h.entry_id) for h in hits] == [("source_id", first), ("source_id", last)]


async def test_a_source_id_is_looked_for_in_the_partitions_it_can_name(
    store: HistoryStore, async_client: aredis.Redis, sync_client: redis.Redis, namespace: str
) -> None:
    # Given three partitions and a dead letter of partition 1 whose source id is ENTRY
    names = Names(namespace, partitions=3)
    later = "1700000000200-0"
    xadd(sync_client, names.partition(1).dead, dead_fields(["x_y"], source_id=ENTRY), later)
    # When searched plain, qualified by its partition and by another
    plain = await search(async_client, names, store, ENTRY)
    own = await search(async_client, names, store, f"1:{ENTRY}")
    other = await search(async_client, names, store, f"2:{ENTRY}")
    # Then the plain and the own partition's find it, qualified; the other partition does not
    found = [("dead_letter", "source_id", 1, f"1:{later}")]
    assert [(h.kind, h.matched, h.partition, h.entry_id) for h in plain.hits] == found
    assert [(h.kind, h.matched, h.partition, h.entry_id) for h in own.hits] == found
    assert other.hits == []


async def test_a_key_of_another_type_is_no_hit_and_no_error(
    store: HistoryStore, async_client: aredis.Redis, sync_client: redis.Redis, namespace: str
) -> None:
    names = Names(namespace)
    sync_client.set(names.valid, "not a stream")
    assert (await search(async_client, names, store, ENTRY)).hits == []


# --- over HTTP ----------------------------------------------------------------------------


async def test_the_search_route_lists_the_hits(
    http: httpx.AsyncClient, seed_history: Callable[..., Awaitable[int]]
) -> None:
    await seed_history(brewslm("run-h", at(1), event_id="ev-h"))
    found = await http.get("/api/search", params={"q": "ev-h"})
    assert found.status_code == 200, found.text
    assert found.json()["hits"][0] | {"ts": None} == {
        "kind": "event", "matched": "event_id", "event_id": "ev-h", "run_id": "run-h",
        "project_id": 7, "entry_id": None, "stream": None, "partition": None, "ts": None,
    }  # fmt: skip
    assert (await http.get("/api/search", params={"q": "run-h"})).json()["hits"][0]["kind"] == "run"
    assert (await http.get("/api/search", params={"q": "nothing"})).json() == {
        "q": "nothing", "hits": [],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "status"),
    [("", 422), ("?q=", 422), ("?q=" + "a" * 257, 422), ("?q=%00", 200), ("?q=%FF%FE", 200),
     ("?q=%F0%9F%92%A5" * 60, 200), ("?q=1-18446744073709551616", 200)],
)  # fmt: skip
async def test_hostile_queries_are_422_or_empty_never_500(
    http: httpx.AsyncClient, query: str, status: int
) -> None:
    response = await http.get(f"/api/search{query}")
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["hits"] == []
    else:
        assert response.json()["error"] == "invalid_request"


async def test_search_needs_the_token_when_reads_do(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]], settings: Settings
) -> None:
    http = await make_client(api_token="t0k", api_read_token_required=True)
    assert (await http.get("/api/search?q=x")).status_code == 401
    ok = await http.get("/api/search?q=x", headers={"authorization": "Bearer t0k"})
    assert ok.status_code == 200
