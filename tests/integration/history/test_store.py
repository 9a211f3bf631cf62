"""The history store, told as stories; every story runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.history import HistoryStore, InvalidCursor, ProjectFilter, StoreRejected
from services.history.base import HistoryRow
from services.history.reads import whole_run
from tests.integration.history.conftest import REFUSALS, raw_sql
from tests.integration.history.factory import T0, at, brewslm, pulse, raw_envelope

pytestmark = pytest.mark.integration


def ids(rows: list[HistoryRow]) -> list[str]:
    return [r.event_id for r in rows]


async def test_an_event_delivered_again_or_redriven_is_stored_once(store: HistoryStore) -> None:
    # Given an event stored once
    first = brewslm("exp-1", at(0), event_id="evt-a", source_id="100-0")
    assert await store.insert_batch([first]) == 1
    # When the same envelope comes again (redelivery) and the same event comes back through
    # a redrive (new entry id, new acceptance time)
    redriven = brewslm("exp-1", at(0), event_id="evt-a", source_id="200-0")
    assert redriven.source_id != first.source_id
    assert await store.insert_batch([first]) == 0
    assert await store.insert_batch([redriven, brewslm("exp-1", at(1), event_id="evt-b")]) == 1
    # Then the history holds each event exactly once
    assert await store.count() == 2
    page = await store.run_timeline("exp-1")
    assert ids(page.rows) == ["evt-a", "evt-b"]
    assert page.rows[0].source_id == "100-0"  # the first write wins; nothing is overwritten


async def test_duplicates_inside_one_batch_are_stored_once(store: HistoryStore) -> None:
    # Given a batch that carries the same event twice
    event = pulse("run-9", at(0), event_id="dup-1")
    # When it is inserted
    inserted = await store.insert_batch([event, event, pulse("run-9", at(1), event_id="dup-2")])
    # Then only the distinct events are new rows
    assert inserted == 2
    assert await store.count() == 2


async def test_update_and_delete_are_refused_by_the_database(
    store: HistoryStore, backend_url: str
) -> None:
    # Given a stored event
    await store.insert_batch([brewslm("exp-2", at(0), event_id="evt-keep")])
    # When someone tries to change or remove it behind the store's back
    for statement in (
        "UPDATE history SET run_id = 'moved'",
        "DELETE FROM history WHERE event_id = 'evt-keep'",
        "DELETE FROM history",  # SQLite's TRUNCATE
    ):
        with pytest.raises(REFUSALS, match="append-only"):
            await raw_sql(backend_url, statement)
    # Then the event is still there, unchanged
    page = await store.run_timeline("exp-2")
    assert [(r.event_id, r.run_id) for r in page.rows] == [("evt-keep", "exp-2")]


async def test_truncate_is_refused_on_postgres(pg_url: str) -> None:
    # Given a migrated PostgreSQL history with rows in a monthly partition and in the default
    from services.history import store_for_url

    store = store_for_url(pg_url)
    await store.open()
    await store.migrate()
    await store.insert_batch([brewslm("exp-3", at(0))])
    await raw_sql(
        pg_url,
        "INSERT INTO history_default (event_id, dialect, run_id, severity, ts, accepted_at, "
        "taxonomy_version, source_id) VALUES ('d1', 'pulse', 'r', 'info', "
        "'2099-12-31T00:00:00Z', now(), 'v', '1-0')",
    )
    # When TRUNCATE is tried on the parent, on a partition, and on the default partition
    month = f"history_p{T0:%Y%m}"
    for table in ("history", month, "history_default"):
        with pytest.raises(REFUSALS, match="append-only"):
            await raw_sql(pg_url, f"TRUNCATE {table}")
    # Then nothing was removed
    assert await store.count() == 2
    await store.close()


async def test_run_timeline_with_nested_children_in_event_time_order(
    store: HistoryStore,
) -> None:
    # Given a run with a Pulse child, a BrewSLM grandchild and a second child, plus an
    # unrelated run at the same times, arriving shuffled over several batches
    parent = [brewslm("exp-10", at(t), event_id=f"p{t}") for t in (0, 10, 20, 30)]
    child = [pulse("run-c1", at(t), parent_run_id="exp-10", event_id=f"c{t}") for t in (5, 15)]
    grandchild = [
        brewslm("exp-g1", at(t), parent_run_id="run-c1", event_id=f"g{t}") for t in (12, 16)
    ]
    second = [brewslm("exp-c2", at(t), parent_run_id="exp-10", event_id=f"d{t}") for t in (1, 25)]
    stranger = [pulse("run-x", at(t), event_id=f"x{t}") for t in (0, 12, 30)]
    everything = parent + child + grandchild + second + stranger
    random.Random(4).shuffle(everything)
    for start in range(0, len(everything), 4):
        await store.insert_batch(everything[start : start + 4])
    # When the run is read alone, and with its children
    alone = await store.run_timeline("exp-10")
    family = await store.run_timeline("exp-10", children=True)
    # Then each holds exactly its events, in event-time order, both dialects
    assert ids(alone.rows) == ["p0", "p10", "p20", "p30"]
    expected = ["p0", "d1", "c5", "p10", "g12", "c15", "g16", "p20", "d25", "p30"]
    assert ids(family.rows) == expected
    assert {r.dialect for r in family.rows} == {"brewslm", "pulse"}
    assert alone.next_cursor is None and family.next_cursor is None
    # And a child's own timeline reaches its grandchild only
    assert ids((await store.run_timeline("run-c1", children=True)).rows) == [
        "c5",
        "g12",
        "c15",
        "g16",
    ]


async def test_timeline_pages_follow_the_cursor_without_gaps_or_repeats(
    store: HistoryStore,
) -> None:
    # Given 25 events of one family, some at the very same time (ties broken by insert order)
    events = [brewslm("exp-20", at(t // 2), event_id=f"e{t:02}") for t in range(15)]
    events += [
        pulse("run-21", at(t), parent_run_id="exp-20", event_id=f"f{t:02}") for t in range(10)
    ]
    await store.insert_batch(events)
    whole = ids((await store.run_timeline("exp-20", children=True, limit=1000)).rows)
    # When it is read 4 at a time
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.run_timeline("exp-20", children=True, cursor=cursor, limit=4)
        seen += ids(page.rows)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Then the pages add up to the whole timeline, in order
    assert seen == whole and len(seen) == 25 and pages == 7
    times = [r.ts for r in await whole_run(store, "exp-20", children=True)]
    assert times == sorted(times)


async def test_a_bad_cursor_is_refused(store: HistoryStore) -> None:
    for bad in ("not-a-cursor", "WyJ4Il0", "eyJhIjoxfQ"):
        with pytest.raises(InvalidCursor):
            await store.run_timeline("exp-1", cursor=bad)


async def test_project_timeline_filters(store: HistoryStore) -> None:
    # Given events of two projects, both dialects, various stages, severities and codes
    await store.insert_batch(
        [
            brewslm("exp-30", at(0), event_id="a", stage="ingestion"),
            brewslm("exp-30", at(60), event_id="b", severity="error", reason_code="training_oom"),
            brewslm("exp-30", at(120), event_id="c", severity="warning"),
            pulse("run-31", at(30), event_id="d", event_type="run.failed", severity="error"),
            pulse("run-31", at(90), event_id="e"),
            brewslm("exp-32", at(10), event_id="other", project_id=8),
        ]
    )

    async def read(**kwargs: object) -> list[str]:
        page = await store.project_timeline(7, ProjectFilter(**kwargs))  # type: ignore[arg-type]
        return ids(page.rows)

    # When / then: each filter narrows the project's timeline, still in event-time order
    assert await read() == ["a", "d", "b", "e", "c"]
    assert await read(stage="training") == ["b", "c"]
    assert await read(severity="error") == ["d", "b"]
    assert await read(reason_code="training_oom") == ["b"]
    assert await read(event_type="run.failed") == ["d"]
    assert await read(since=at(30), until=at(120)) == ["d", "b", "e"]
    assert await read(stage="training", severity="warning") == ["c"]
    assert ids((await store.project_timeline(8)).rows) == ["other"]
    # And pages of 2 carry the filters along
    first = await store.project_timeline(7, ProjectFilter(since=at(1)), limit=2)
    assert ids(first.rows) == ["d", "b"] and first.next_cursor
    rest = await store.project_timeline(7, ProjectFilter(since=at(1)), cursor=first.next_cursor)
    assert ids(rest.rows) == ["e", "c"] and rest.next_cursor is None


async def test_rows_keep_event_time_and_insert_time_apart(store: HistoryStore) -> None:
    # Given a back-dated BrewSLM event and a Pulse event with details
    back = datetime(2001, 9, 1, 8, 30, 15, 123456, tzinfo=UTC)
    await store.insert_batch(
        [
            brewslm("exp-40", back, event_id="old", payload={"rows": 3, "tags": ["a"]}),
            pulse("exp-40", back + timedelta(seconds=1), event_id="new", details={"k": "v"}),
        ]
    )
    # When the run is read
    old, new = (await store.run_timeline("exp-40")).rows
    # Then ts is the producer's time, created_at the insert time, and each dialect's fields
    assert old.ts == back and new.ts == back + timedelta(seconds=1)
    assert datetime.now(UTC) - old.created_at < timedelta(minutes=5)
    assert old.to_dict()["payload"] == {"rows": 3, "tags": ["a"]}
    assert old.stage == "training" and old.event_type is None
    assert new.to_dict()["details"] == {"k": "v"} and new.event_type == "stage.completed"
    assert "stage" not in new.to_dict() and "event_type" not in old.to_dict()


async def test_a_row_the_database_refuses_rolls_back_its_whole_batch(store: HistoryStore) -> None:
    # Given a batch with one row that breaks the schema (an empty run id) among good rows
    good = [brewslm("exp-50", at(t), event_id=f"ok{t}") for t in range(3)]
    poison = raw_envelope(
        {"project_id": 7, "run_id": "", "stage": "training", "severity": "info",
         "ts": at(9).isoformat()},
        event_id="bad",
    )  # fmt: skip
    # When it is inserted, the database refuses it and nothing of the batch is kept
    with pytest.raises(StoreRejected):
        await store.insert_batch([*good, poison])
    assert await store.count() == 0
    # Then the good rows alone go in
    assert await store.insert_batch(good) == 3


async def test_iter_events_reads_everything_in_event_time_order(store: HistoryStore) -> None:
    # Given events of two projects (and a Pulse event with no project), out of order
    times = list(range(30))
    random.Random(7).shuffle(times)
    await store.insert_batch(
        [brewslm("exp-60", at(t), event_id=f"i{t:02}", project_id=7 + t % 2) for t in times]
        + [pulse("run-61", at(5.5), event_id="noproj", project_id=None)]
    )
    # When they are iterated
    everything = [r async for r in store.iter_events()]
    seven = [r async for r in store.iter_events(7)]
    # Then in (ts, id) order
    assert len(everything) == 31 and everything[6].event_id == "noproj"
    assert [r.ts for r in everything] == sorted(r.ts for r in everything)
    assert ids(seven) == [f"i{t:02}" for t in range(0, 30, 2)]


async def test_migrations_apply_once(store: HistoryStore, backend_url: str) -> None:
    # Given a migrated store (the fixture migrated it)
    from services.history import store_for_url

    # When migrations run again, from this store and from a fresh one
    assert await store.migrate() == []
    other = store_for_url(backend_url)
    await other.open()
    assert await other.migrate() == []
    await other.close()
    # Then each version is recorded once
    rows = await raw_sql(backend_url, "SELECT version FROM schema_migrations")
    assert sorted(tuple(r) for r in rows) == [(1,), (2,)]


async def test_prune_removes_only_old_history(store: HistoryStore, backend_url: str) -> None:
    # Given events 200 and 95 days old, and recent ones
    now = datetime.now(UTC)
    old = [
        brewslm("exp-70", now - timedelta(days=200, seconds=t), event_id=f"o{t}") for t in range(3)
    ]
    edge = brewslm("exp-70", now - timedelta(days=95), event_id="edge")
    recent = [
        pulse("run-71", now - timedelta(days=10, seconds=t), event_id=f"r{t}") for t in range(2)
    ]
    await store.insert_batch([*old, edge, *recent])
    # When history older than 90 days is pruned
    result = await store.prune(timedelta(days=90))
    # Then the old events are gone and the recent ones kept
    left = {r.event_id async for r in store.iter_events()}
    assert {"r0", "r1"} <= left and not left & {"o0", "o1", "o2"}
    if backend_url.startswith("sqlite"):
        # SQLite deletes row by row: the 95-day-old event goes too
        assert left == {"r0", "r1"} and result.rows_deleted == 4
    else:
        # PostgreSQL drops whole months: the 95-day-old event stays unless its month is over
        month_over = edge.event["ts"][:7] < f"{result.cutoff:%Y-%m}"
        assert ("edge" not in left) == month_over
        assert f"history_p{now - timedelta(days=200):%Y%m}" in result.partitions_dropped
        assert result.rows_deleted == (4 if month_over else 3)
    # And the history is still append-only afterwards
    with pytest.raises(REFUSALS, match="append-only"):
        await raw_sql(backend_url, "DELETE FROM history")
    assert len([r async for r in store.iter_events()]) == len(left)


NASTY = [
    "nul\x00inside",
    "\x00",
    "\ufdd0 the escape mark itself \ufdd0\ufdd1",
    "'; DROP TABLE history; --",
    "emoji 🧪 e\u0301 \u202eevil",
    "\\u0000 literally",
]


async def test_text_comes_back_exactly_as_it_was_sent(store: HistoryStore) -> None:
    # Given events whose free text, run ids and JSON hold NUL and other hostile characters
    events = []
    for i, text in enumerate(NASTY):
        payload = {text: text, "list": [text, {"k": text}], "z": 1, "a": 2}
        events.append(brewslm(f"run{text}", at(i), event_id=f"n{i}", parent_run_id=f"p{text}",
                              actor=text, summary=text, payload=payload))  # fmt: skip
        events.append(pulse(f"run{text}", at(i + 0.5), event_id=f"m{i}", message=text,
                            details=payload, parent_run_id="root\x00"))  # fmt: skip
    await store.insert_batch(events)
    # When they are read back, by their own (hostile) run ids and through a family read
    for i, text in enumerate(NASTY):
        rows = (await store.run_timeline(f"run{text}")).rows
        brew, pul = rows
        # Then every text is unchanged, JSON key order included
        assert (brew.run_id, brew.parent_run_id, brew.actor, brew.summary) == (
            f"run{text}", f"p{text}", text, text,
        )  # fmt: skip
        assert pul.message == text and pul.parent_run_id == "root\x00"
        assert brew.payload == events[2 * i].event["payload"]
        assert list((brew.payload or {}).keys()) == [text, "list", "z", "a"]
    family = await store.run_timeline("root\x00", children=True)
    assert len(family.rows) == len(NASTY) * 2  # each run is a child of root\0 (Pulse rows say so)
    assert {r.event_id for r in family.rows} >= {f"m{i}" for i in range(len(NASTY))}
