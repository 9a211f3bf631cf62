"""The fast path judges every entry as the pydantic path does: same verdicts, codes, bytes.

`reference_judge` is the validator before the fast path (pydantic, the contract's error codes);
`judge` tries `fast_judge` first. For every entry of the bad-input corpus, every generated
hostile, valid and near-valid entry, and every event of the benchmark's workload: `judge`
gives exactly the reference's verdict (codes and message, or the valid-stream bytes), and
whatever the fast path accepts the reference accepts with the same bytes. Valid events in the
forms producers write take the fast path (or it would be a slow path that passes the tests).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, model_validator

from bench import events
from services.validator import fast
from services.validator.logic import Valid, fast_judge, judge, reference_judge
from shared.models import RunEvent
from shared.taxonomy import Taxonomy, build_taxonomy
from shared.valid_stream import struct_of
from shared.wire import DATA_FIELD, ORIGIN_ID_FIELD
from tests.unit.badinput.corpus import Case, corpus, event, pulse
from tests.unit.badinput.mutate import mutants
from tests.unit.badinput.near_valid import ODD_LITERALS, near_valid_bodies, times, valid_bodies
from tests.unit.badinput.strategies import entries, examples, recipes

NOW = datetime(2024, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
ENTRY_ID = "1717200000000-0"
LIMIT = 64 * 1024
#: The seed taxonomy under both cross-stage policies.
TAXONOMIES = (build_taxonomy(), build_taxonomy(cross_stage_policy="accept"))
CASES = corpus()


def suite(default: int, full: int) -> settings:
    """Hypothesis settings: `default` examples, `full` in the long run."""
    slow = [HealthCheck.too_slow, HealthCheck.data_too_large]
    return settings(max_examples=examples(default, full), deadline=None, suppress_health_check=slow)


partitions = st.one_of(st.none(), st.integers(0, 7))


def judged_alike(
    fields: dict[bytes, bytes], taxonomy: Taxonomy = TAXONOMIES[0], partition: int | None = None
) -> bool:
    """`judge` is the reference; what the fast path accepts, the reference writes the same.

    True when the fast path took the entry.
    """
    args = (ENTRY_ID, fields, taxonomy, LIMIT, NOW, partition)
    want = reference_judge(*args)
    quick = fast_judge(*args)
    if quick is not None:
        assert isinstance(want, Valid), f"the fast path accepted a rejected entry: {want}"
        assert quick.fields == want.fields
    assert judge(*args) == want
    return quick is not None


@pytest.mark.parametrize("taxonomy", TAXONOMIES, ids=["reject", "accept"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_is_judged_as_the_pydantic_path_judges_it(
    case: Case, taxonomy: Taxonomy
) -> None:
    judged_alike(case.fields, taxonomy)
    judged_alike(case.fields, taxonomy, partition=3)


def test_valid_corpus_cases_mostly_take_the_fast_path() -> None:
    valid = [c for c in CASES if c.expect == "valid"]
    fast_ones = {c.name for c in valid if judged_alike(c.fields)}
    # The cases it leaves: a time as a number, nesting deeper than the bracket budget, ...
    assert len(fast_ones) >= 0.8 * len(valid), sorted({c.name for c in valid} - fast_ones)
    taken = {"ts 2024-05-01T12:00:00+14:00", "summary escaped NUL", "legacy envelope",
             "faststream binary, valid body", "duplicate JSON keys, last wins"}  # fmt: skip
    assert taken <= fast_ones


@pytest.mark.parametrize("seq", range(len(events.TEMPLATES) * 3))
def test_every_workload_event_takes_the_fast_path(seq: int) -> None:
    ts = datetime(2026, 12, 1, 17, 0, seq, seq * 1001, tzinfo=UTC).isoformat()
    assert judged_alike({DATA_FIELD: events.body(seq, "e-", ts)})
    assert judged_alike({DATA_FIELD: events.body(seq, "e-", ts.replace("+00:00", "Z"))})


@suite(200, 10_000)
@given(body=valid_bodies(), partition=partitions, origin=st.sampled_from([None, b"5-1", b"x"]))
def test_valid_events_take_the_fast_path_with_the_pydantic_bytes(
    body: bytes, partition: int | None, origin: bytes | None
) -> None:
    # (Digits in a run of 19, here only in text, are left to pydantic: it may be a big number)
    assume(not re.search(rb"[0-9]{19}", body))
    fields = {DATA_FIELD: body} | ({ORIGIN_ID_FIELD: origin} if origin else {})
    assert judged_alike(fields, partition=partition), "a valid event left the fast path"


@suite(300, 20_000)
@given(body=near_valid_bodies(), partition=partitions)
def test_near_valid_events_are_judged_as_the_pydantic_path_judges_them(
    body: bytes, partition: int | None
) -> None:
    judged_alike({DATA_FIELD: body}, partition=partition)


@suite(200, 10_000)
@given(fields=entries(), taxonomy=st.sampled_from(TAXONOMIES))
def test_hostile_entries_are_judged_as_the_pydantic_path_judges_them(
    fields: dict[bytes, bytes], taxonomy: Taxonomy
) -> None:
    judged_alike(fields, taxonomy)


@suite(20, 500)
@given(recipe=recipes)
def test_mutated_entries_are_judged_as_the_pydantic_path_judges_them(
    recipe: tuple[int, list[str]],
) -> None:
    for fields in mutants(recipe[0], 200, recipe[1]):
        judged_alike(fields)


@suite(200, 20_000)
@given(ts=st.one_of(times(), st.from_regex(fast.RFC3339)))
@example(ts="2024-05-01T12:00:00+23:59")
@example(ts="1970-01-01T00:00:00+00:01")
@example(ts="2099-12-31T23:59:59.999999-00:01")
def test_every_time_the_fast_path_reads_is_the_instant_pydantic_reads(ts: str) -> None:
    # Text of the fast path's time form, valid dates or not: read alike, or left to pydantic
    judged_alike({DATA_FIELD: orjson.dumps(event(ts=ts))})


@pytest.mark.parametrize("literal", ODD_LITERALS, ids=[n.decode()[:24] for n in ODD_LITERALS])
@pytest.mark.parametrize("doc", [event(), pulse()], ids=["brewslm", "pulse"])
def test_odd_numbers_are_judged_as_the_pydantic_path_judges_them(
    literal: bytes, doc: dict[str, Any]
) -> None:
    field = b"details" if "event_type" in doc else b"payload"
    for spliced in (b'{"n":%s}' % literal, b'{"a":[1,{"n":%s}]}' % literal):
        judged_alike({DATA_FIELD: orjson.dumps(doc)[:-1] + b',"%s":%s}' % (field, spliced)})


@pytest.mark.parametrize(
    ("why", "body"),
    [
        ("seven fractional digits", orjson.dumps(event(ts="2024-05-01T12:00:00.9999999Z"))),
        ("a time as a number", orjson.dumps(event(ts=1700000000))),
        ("a date alone", orjson.dumps(event(ts="2024-05-01"))),
        ("an integer beyond 64 bits", orjson.dumps(event())[:-1] + b',"payload":{"n":%d}}' % 2**64),
        ("a float written with an exponent", orjson.dumps(event(payload={"x": 1e16}))),
        ("more brackets than the nesting limit", orjson.dumps(event(payload={"a": [[]] * 100}))),
        ("an id with a final newline", orjson.dumps(event(event_id="abc\n"))),
        ("an unknown reason code", orjson.dumps(event(severity="error", reason_code="nope"))),
        ("not JSON", b'{"stage":'),
    ],
)  # fmt: skip
def test_what_the_fast_path_leaves_to_pydantic(why: str, body: bytes) -> None:
    assert fast.accepted(body, TAXONOMIES[0]) is None, why
    assert not judged_alike({DATA_FIELD: body})


def test_the_gate_follows_the_model_or_refuses_to_be_built() -> None:
    # The event models' own constraints are in the gate's structs (derived, not restated)
    assert fast.accepted(orjson.dumps(event(run_id="r" * 257)), TAXONOMIES[0]) is None
    assert fast.accepted(orjson.dumps(event(run_id="r" * 256)), TAXONOMIES[0]) is not None

    class Odd(BaseModel):
        n: Annotated[int, Field(multiple_of=2)]

    class Checked(BaseModel):
        n: int

        @model_validator(mode="after")
        def _check(self) -> Checked:
            return self

    with pytest.raises(TypeError, match="constraint"):
        struct_of(Odd, dict[str, Any], strict=True)
    with pytest.raises(TypeError, match="datetime"):
        struct_of(RunEvent, dict[str, Any], strict=True)
    with pytest.raises(TypeError, match="validators"):
        fast.gate_of(Checked)
    assert re.fullmatch(fast.RFC3339, "2024-05-01T12:00:00.5+01:00")
