"""A SQLite page encoded straight from its fetched tuples (`sqlite_rows.fields_of`, what the
API serves) is byte for byte the encoding of the rows `rows_of` builds (`HistoryRow.fields`),
for any row: both dialects and an unknown one, nulls, any text, JSON objects and non-objects,
times across the contract's range."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.history.base import Page
from services.history.sqlite_rows import BODY, fields_of, page_of_raw, rows_of

texts = st.text(max_size=12)
maybe = st.none() | texts
#: Microseconds from 1970 to 2100 (the contract's bound).
times = st.integers(min_value=0, max_value=4_102_444_800_000_000 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | texts
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


@st.composite
def raw_rows(draw: st.DrawFn) -> tuple[Any, ...]:
    plain = {name: draw(maybe) for name in BODY[:-4]}
    plain["dialect"] = draw(st.sampled_from(("brewslm", "pulse", "other")))
    body = [*plain.values(), draw(times), draw(times), draw(json_values), draw(json_values)]
    return (
        draw(st.integers(1, 2**63 - 1)), draw(texts), draw(texts), draw(maybe),
        draw(st.none() | st.integers(-(2**63), 2**63 - 1)), draw(times),
        orjson.dumps(body).decode(),
    )  # fmt: skip


@settings(max_examples=300)
@given(st.lists(raw_rows(), max_size=6))
def test_the_fetched_encoding_is_the_rows_encoding(raw: list[tuple[Any, ...]]) -> None:
    expected = orjson.dumps([r.fields() for r in rows_of(raw)])
    assert orjson.dumps(fields_of(raw)) == expected


@given(st.lists(raw_rows(), min_size=1, max_size=5), st.integers(1, 5))
def test_a_fetched_page_answers_as_its_rows_would(raw: list[tuple[Any, ...]], limit: int) -> None:
    page = page_of_raw(raw, limit)
    encoded = page.to_json()  # before `rows` is read: straight from the tuples
    assert len(page) == min(limit, len(raw))
    assert encoded == Page(page.rows, page.next_cursor).to_json()
    assert (page.next_cursor is None) == (len(raw) <= limit)
