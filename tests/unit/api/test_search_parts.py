"""Pure parts of the search box: which texts are searched, what an entry's fields tell."""

from __future__ import annotations

import orjson
import pytest

from services.api.search import (
    MAX_QUERY,
    InvalidSearch,
    _entry_ts,
    _given_event_id,
    _ids_of,
    _project_id,
    check_query,
)
from services.ops.lookup import SOURCE_PAGE, SOURCE_PAGES, Found
from shared.names import StreamKind
from shared.settings import REPO_ROOT
from shared.wire import DATA_FIELD
from tests.unit.ops.builders import brewslm_body, dead_fields


@pytest.mark.parametrize("q", ["x", " ", "\x00", "é" * MAX_QUERY, "run/1 ⚠"])
def test_any_unicode_text_up_to_the_longest_run_id_is_searched(q: str) -> None:
    assert check_query(q) == q


@pytest.mark.parametrize("q", ["", "a" * (MAX_QUERY + 1), "a\ud800b"])
def test_empty_too_long_or_not_unicode_text_is_refused(q: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        check_query(q)
    assert caught.value.code == "invalid_search" and caught.value.field == "q"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("42", 42), (str(2**63 - 1), 2**63 - 1), (str(2**63), None), ("-1", None),
     ("007", None), ("١٢", None), ("4 2", None), (None, None), ("", None)],
)  # fmt: skip
def test_a_project_id_is_a_canonical_signed_64_bit_decimal(
    text: str | None, expected: int | None
) -> None:
    assert _project_id(text) == expected


def test_an_incoming_body_gives_its_event_id_only_when_it_is_one() -> None:
    assert _given_event_id(brewslm_body(event_id="ok-1")) == "ok-1"
    nots = [brewslm_body(), brewslm_body(event_id="bad id"), b"[1]", b"{nope", b'{"event_id": 3}']
    for body in nots:
        assert _given_event_id(body) is None


def test_the_ids_of_entries_come_from_their_fields_and_never_fail() -> None:
    dead = Found(StreamKind.DEAD, 0, "1-0", dead_fields(["malformed_json"]))
    assert _ids_of(dead)["run_id"] == "exp-42" and _ids_of(dead)["project_id"] == "7"
    incoming = Found(StreamKind.EVENTS, 0, "1-0", {DATA_FIELD: brewslm_body(event_id="e")})
    assert (_ids_of(incoming)["event_id"], _ids_of(incoming)["run_id"]) == ("e", "exp-42")
    for kind in (StreamKind.EVENTS, StreamKind.VALID):
        for fields in ({}, {DATA_FIELD: b"\xff"}, {DATA_FIELD: orjson.dumps({"event": 1})}):
            assert _ids_of(Found(kind, 0, "1-0", fields)).get("event_id") is None


def test_an_entry_time_past_what_a_datetime_holds_is_none() -> None:
    assert _entry_ts(f"{2**64 - 1}-0") is None
    assert _entry_ts("1700000000000-0") is not None


def test_the_docs_state_the_bound_of_the_source_id_lookup() -> None:
    # The bound is the code's: the API and dashboard pages say the same figures
    api = (REPO_ROOT / "docs" / "api.md").read_text()
    bound = f"{SOURCE_PAGE * SOURCE_PAGES:,}"
    assert f"{SOURCE_PAGE} entries a page (`XRANGE … COUNT {SOURCE_PAGE}`)" in api
    assert f"{SOURCE_PAGES} pages at most" in api and f"the first\n{bound} written" in api
    assert f"the first {bound} dead letters" in (REPO_ROOT / "docs" / "dashboard.md").read_text()
