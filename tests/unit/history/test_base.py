"""Cursors, pages and row rendering of the history interface."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.history.base import (
    MAX_DEPTH,
    MAX_FAMILY,
    MAX_PAGE,
    SHOWN,
    HistoryRow,
    InvalidCursor,
    Page,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    family_of,
    page_of,
)

T = datetime(2026, 3, 1, tzinfo=UTC)


def row(i: int, dialect: str = "brewslm") -> HistoryRow:
    return HistoryRow(
        id=i, event_id=f"e{i}", dialect=dialect, project_id=1, run_id="r", parent_run_id=None,
        severity="info", ts=T + timedelta(seconds=i), created_at=T, accepted_at=T,
        taxonomy_version="v", source_id=f"{i}-0", stage="training", payload={"i": i},
        event_type="run.completed", message="m", details={"d": 1},
    )  # fmt: skip


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
    st.integers(min_value=0, max_value=2**63 - 1),
)
def test_a_cursor_round_trips(ts: datetime, row_id: int) -> None:
    cursor = encode_cursor(ts, row_id)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor) == (ts, row_id)


def test_a_cursor_keeps_the_instant_whatever_the_zone() -> None:
    local = T.astimezone(timezone(timedelta(hours=5)))
    assert decode_cursor(encode_cursor(local, 3))[0] == T


@pytest.mark.parametrize(
    "bad",
    ["", "not base64!", "bm90IGpzb24", "WzEsMl0", "WyIyMDI2LTAzLTAxIiwxXQ", "WyJ4IiwxXQ", "e30"],
)
def test_a_forged_cursor_is_refused(bad: str) -> None:
    # "[1,2]", a naive time, a non-time, "{}" ... none is a cursor we handed out
    with pytest.raises(InvalidCursor):
        decode_cursor(bad)


def test_page_of_cuts_at_the_limit_and_points_after_the_last_row() -> None:
    rows = [row(i) for i in range(4)]
    page = page_of(rows, 3)
    assert [r.id for r in page.rows] == [0, 1, 2]
    assert page.next_cursor is not None and decode_cursor(page.next_cursor) == (rows[2].ts, 2)
    assert page_of(rows, 4).next_cursor is None
    assert page_of([], 10).rows == []


def test_limits_are_clamped() -> None:
    assert clamp_limit(0) == 1 and clamp_limit(-5) == 1
    assert clamp_limit(10**9) == MAX_PAGE and clamp_limit(50) == 50


def test_rows_render_their_own_dialect_fields() -> None:
    brew = row(1).to_dict()
    assert brew["stage"] == "training" and brew["payload"] == {"i": 1}
    assert "event_type" not in brew and "details" not in brew
    assert brew["ts"] == "2026-03-01T00:00:01+00:00"
    pulse = row(2, "pulse").to_dict()
    assert pulse["event_type"] == "run.completed" and pulse["details"] == {"d": 1}
    assert "stage" not in pulse and "payload" not in pulse


def test_rows_cost_the_cyclic_garbage_collector_nothing() -> None:
    # A run read builds thousands: untracked, they never grow the old generation whose growth
    # triggers full collections (the run-detail p99)
    rows = [row(i) for i in range(1000)]
    assert not any(gc.is_tracked(r) for r in rows)
    before = len(gc.get_objects())
    more = [row(i) for i in range(1000)]
    assert len(gc.get_objects()) - before < 50 and len(more) == 1000


async def test_a_family_is_followed_level_by_level_through_cycles() -> None:
    tree = {"a": ["b", "c"], "b": ["d"], "c": [], "d": ["a", "e"], "e": []}  # d -> a: a cycle
    asked: list[list[str]] = []

    async def children_of(runs: list[str]) -> list[str]:
        asked.append(sorted(runs))
        return [child for run in runs for child in tree.get(run, [])]

    assert await family_of("a", children_of) == ["a", "b", "c", "d", "e"]
    assert asked == [["a"], ["b", "c"], ["d"], ["e"]]
    assert await family_of("zzz", children_of) == ["zzz"]


async def test_a_family_read_has_bounds() -> None:
    async def endless(runs: list[str]) -> list[str]:  # every run has 3 new children
        return [f"{r}.{i}" for r in runs for i in range(3)]

    family = await family_of("r", endless)
    assert len(family) == MAX_FAMILY and len(set(family)) == MAX_FAMILY

    async def chain(runs: list[str]) -> list[str]:
        return [f"{runs[0]}+"]

    assert len(await family_of("r", chain)) == MAX_DEPTH + 1


_TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
    allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=10,
)  # fmt: skip
_TIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


@given(
    st.sampled_from(["brewslm", "pulse"]), _TIMES, _TIMES, _TEXT,
    st.dictionaries(_TEXT, _JSON, max_size=4) | st.none(),
)  # fmt: skip
def test_the_api_encoding_of_a_page_is_its_dict(
    dialect: str, ts: datetime, accepted: datetime, text: str, doc: dict[str, Any] | None
) -> None:
    # `to_json` lets orjson write the times: the same text as `isoformat`, field for field
    shown = msgspec.structs.replace(
        row(1, dialect), ts=ts, accepted_at=accepted, summary=text, message=text,
        payload=doc, details=doc,
    )  # fmt: skip
    page = Page([shown, row(2, dialect)], next_cursor="5.2")
    encoded = page.to_json()
    assert orjson.loads(encoded) == page.to_dict()
    assert list(orjson.loads(encoded)["events"][0]) == list(page.to_dict()["events"][0])
    assert set(page.to_dict()["events"][0]) == set(SHOWN[dialect])
