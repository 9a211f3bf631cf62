"""Stories of a run's family on both stores: the parent chain (bounded, cycle-safe), the
direct children with their time spans, the event-id lookup; and the plans are index reads."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest

from services.history import HistoryStore
from services.history.base import PARENT_PROBE
from services.history.family import MAX_ANCESTORS
from services.history.reads import NotFound, read_family
from tests.integration.history.conftest import raw_sql
from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration


async def test_a_run_has_its_parent_chain_and_its_children(store: HistoryStore) -> None:
    # Given autopilot -> exp-1 -> (exp-1a, exp-1b), the child runs in both dialects
    await store.insert_batch([
        brewslm("autopilot", at(0), stage="autopilot", event_id="a0"),
        brewslm("autopilot", at(90), stage="autopilot", event_id="a1"),
        brewslm("exp-1", at(10), parent_run_id="autopilot", event_id="e0"),
        brewslm("exp-1", at(50), parent_run_id="autopilot", event_id="e1"),
        pulse("exp-1b", at(30), parent_run_id="exp-1", event_id="c0"),
        brewslm("exp-1a", at(20), parent_run_id="exp-1", event_id="c1"),
        brewslm("exp-1a", at(40), parent_run_id="exp-1", event_id="c2"),
    ])  # fmt: skip
    # When the middle run's family is read
    family = await read_family(store, "exp-1")
    # Then it has its span, its parent chain up to the root, and its children by run id
    assert (family.first_ts, family.last_ts, family.parent_run_id) == (at(10), at(50), "autopilot")
    assert [(r.run_id, r.first_ts, r.last_ts) for r in family.ancestors] == [
        ("autopilot", at(0), at(90))
    ]
    assert family.chain_end == "root"
    assert [(r.run_id, r.first_ts, r.last_ts) for r in family.children] == [
        ("exp-1a", at(20), at(40)), ("exp-1b", at(30), at(30)),
    ]  # fmt: skip
    assert family.more_children is False
    # and a leaf has the whole chain, parent first, and no children
    leaf = await read_family(store, "exp-1a")
    assert [r.run_id for r in leaf.ancestors] == ["exp-1", "autopilot"]
    assert leaf.children == []


async def test_an_unknown_run_is_not_found_and_a_parent_never_stored_ends_the_chain(
    store: HistoryStore,
) -> None:
    await store.insert_batch([brewslm("orphan", at(1), parent_run_id="gone", event_id="o")])
    with pytest.raises(NotFound):
        await read_family(store, "gone")
    family = await read_family(store, "orphan")
    assert [(r.run_id, r.first_ts) for r in family.ancestors] == [("gone", None)]
    assert family.chain_end == "missing"


async def test_cycles_end_the_chain_and_a_self_parent_is_no_child(store: HistoryStore) -> None:
    # Given a -> b -> c -> a, and a run naming itself as its parent
    await store.insert_batch([
        brewslm("a", at(1), parent_run_id="c", event_id="1"),
        brewslm("b", at(2), parent_run_id="a", event_id="2"),
        brewslm("c", at(3), parent_run_id="b", event_id="3"),
        brewslm("self", at(4), parent_run_id="self", event_id="4"),
    ])  # fmt: skip
    # Then the chain of a stops where it loops back, each run once
    family = await read_family(store, "a")
    assert [r.run_id for r in family.ancestors] == ["c", "b"]
    assert family.chain_end == "cycle"
    assert [r.run_id for r in family.children] == ["b"]
    lonely = await read_family(store, "self")
    assert (lonely.ancestors, lonely.chain_end, lonely.children) == ([], "cycle", [])


async def test_a_long_chain_stops_at_the_bound(store: HistoryStore) -> None:
    depth = MAX_ANCESTORS + 5
    await store.insert_batch(
        [brewslm("r0", at(0), event_id="r0")]
        + [brewslm(f"r{i}", at(i), parent_run_id=f"r{i - 1}", event_id=f"r{i}")
           for i in range(1, depth + 1)]
    )  # fmt: skip
    family = await read_family(store, f"r{depth}")
    assert len(family.ancestors) == MAX_ANCESTORS and family.chain_end == "limit"
    assert family.ancestors[0].run_id == f"r{depth - 1}"


async def test_children_are_bounded_and_say_there_are_more(store: HistoryStore) -> None:
    await store.insert_batch(
        [brewslm("p", at(0), event_id="p")]
        + [brewslm(f"k{i:02d}", at(i), parent_run_id="p", event_id=f"k{i}") for i in range(12)]
    )
    family = await read_family(store, "p", children_limit=5)
    assert [r.run_id for r in family.children] == [f"k{i:02d}" for i in range(5)]
    assert family.more_children is True
    assert (await read_family(store, "p", children_limit=12)).more_children is False


async def test_the_parent_is_the_first_named_among_the_first_events(store: HistoryStore) -> None:
    # Given a run whose first events name no parent, then one does; and a run naming its
    # parent only after PARENT_PROBE events
    await store.insert_batch(
        [brewslm("late", at(0), event_id="l0"), brewslm("late", at(1), event_id="l1"),
         brewslm("late", at(2), parent_run_id="up", event_id="l2"),
         brewslm("up", at(0), event_id="u")]
        + [brewslm("long", at(i), event_id=f"g{i}") for i in range(PARENT_PROBE)]
        + [brewslm("long", at(PARENT_PROBE), parent_run_id="up", event_id="gx")]
    )  # fmt: skip
    assert (await read_family(store, "late")).parent_run_id == "up"
    # the probe is bounded: that parent is past it (the child list of "up" still has both)
    assert (await read_family(store, "long")).parent_run_id is None
    assert [r.run_id for r in (await read_family(store, "up")).children] == ["late", "long"]


async def test_run_ids_with_nul_and_unicode_are_found(store: HistoryStore) -> None:
    odd, parent = "run\x00é/ x", "père\x00"
    await store.insert_batch([
        brewslm(parent, at(0), event_id="p"),
        brewslm(odd, at(1), parent_run_id=parent, event_id="c"),
    ])  # fmt: skip
    family = await read_family(store, odd)
    assert family.run_id == odd and [r.run_id for r in family.ancestors] == [parent]
    assert [r.run_id for r in (await read_family(store, parent)).children] == [odd]


async def test_events_are_found_by_event_id(store: HistoryStore) -> None:
    await store.insert_batch([
        brewslm("r", at(2), event_id="same"), brewslm("r", at(1), event_id="same"),
        brewslm("r", at(3), event_id="other"),
    ])  # fmt: skip
    rows = await store.events_by_id(["same", "none"])
    assert [(r.event_id, r.ts) for r in rows] == [("same", at(1)), ("same", at(2))]
    assert await store.events_by_id([]) == []


def _plan_text(rows: list[Any]) -> str:
    return "\n".join(" ".join(str(v) for v in tuple(r)) for r in rows)


@pytest.mark.parametrize("backend_url", ["sqlite"], indirect=True)
async def test_the_sqlite_reads_use_the_indexes(store: HistoryStore, backend_url: str) -> None:
    from services.history.sqlite import _SPAN

    span = _plan_text(await raw_sql(backend_url, f"EXPLAIN QUERY PLAN {_SPAN}", "r", 100))
    children = _plan_text(await raw_sql(
        backend_url, "EXPLAIN QUERY PLAN SELECT DISTINCT run_id FROM history "
        "WHERE parent_run_id = ? ORDER BY run_id LIMIT ?", "r", 5,
    ))  # fmt: skip
    by_id = _plan_text(await raw_sql(
        backend_url, "EXPLAIN QUERY PLAN SELECT * FROM history WHERE event_id IN (?)", "e"
    ))  # fmt: skip
    # every read of the table searches an index (the one SCAN of the span reads the probe's
    # at most PARENT_PROBE rows)
    for plan in (span, children, by_id):
        assert "SCAN history" not in plan and "TEMP B-TREE" not in plan, plan
    assert span.count("SEARCH history USING COVERING INDEX history_run") == 2, span
    assert span.count("history_run (run_id=?)") == 3, span
    assert "COVERING INDEX history_parent (parent_run_id=?)" in children, children
    assert "INDEX sqlite_autoindex_history_1 (event_id=?)" in by_id, by_id


@pytest.mark.parametrize("backend_url", ["postgres"], indirect=True)
async def test_the_postgres_reads_use_the_indexes(store: HistoryStore, backend_url: str) -> None:
    from services.history.postgres import _SPANS

    # A tiny table is read whole whatever the indexes: with sequential scans priced out, the
    # plans show that an index serves each read, in order (no sort), on every partition.
    plans = await _pg_plans(backend_url, [
        (f"EXPLAIN {_SPANS}", (["r1"], 100)),
        ("EXPLAIN SELECT DISTINCT run_id FROM history WHERE parent_run_id = $1 "
         "ORDER BY run_id LIMIT $2", ("r1", 5)),
        ("EXPLAIN SELECT * FROM history WHERE event_id = ANY($1::text[])", (["e1"],)),
    ])  # fmt: skip
    span, children, by_id = plans
    for plan in plans:
        assert "Seq Scan" not in plan and not re.search(r"(^|->  )Sort ", plan, re.M), plan
    assert span.count("run_id_ts_id_idx") >= 3 and "Backward" in span, span
    assert "Index Only Scan using history_p" in children, children
    assert "parent_run_id_run_id_idx" in children, children
    assert "event_id_ts_key" in by_id, by_id


async def _pg_plans(url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_bitmapscan = off")
        return [_plan_text(await conn.fetch(sql, *args)) for sql, args in statements]
    finally:
        await conn.close()
