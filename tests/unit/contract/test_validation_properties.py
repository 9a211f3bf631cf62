"""Property tests: no input, however malformed, makes validation raise.

For any bytes, any JSON value and any mutation of a valid event, `validate_bytes` and
`validate_document` return `Accepted` or `Rejected`; a rejection carries at least one code, each
from a documented family; an acceptance re-encodes and re-validates to the same event (so the
validator can always write what it accepted). ``RUNBUS_FUZZ_EXAMPLES`` (or ``RUNBUS_FUZZ_FULL``,
as `make test-fuzz` sets) scales the run up.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.taxonomy import SEED_TAXONOMY
from shared.validation import Accepted, Rejected, Result, validate_bytes, validate_document
from shared.wire import event_body
from tests.unit.contract import expected
from tests.unit.contract.events import brewslm, is_documented, pulse

_DEFAULT_EXAMPLES = "5000" if os.environ.get("RUNBUS_FUZZ_FULL") else "150"
EXAMPLES = int(os.environ.get("RUNBUS_FUZZ_EXAMPLES", _DEFAULT_EXAMPLES))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(["training", "error", "training_oom", "run.failed", "warn", "pulse", ""])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
FIELDS = sorted(
    {*brewslm(), *pulse(), "dialect", "event_id", "actor", "project_id", "parent_run_id"}
)


def assert_is_a_result(result: Result) -> None:
    """The properties every validation result has."""
    assert isinstance(result, Accepted | Rejected)
    if isinstance(result, Rejected):
        assert result.errors, "a rejection must name at least one code"
        assert len(result.errors) == len(set(result.errors))
        bad = [e for e in result.errors if not is_documented(e)]
        assert bad == [], bad
        assert isinstance(result.message, str)
        return
    body = event_body(result.event)  # what a producer or the validator writes back
    again = validate_bytes(body, SEED_TAXONOMY)
    assert isinstance(again, Accepted)
    assert again.event == result.event


def check_both_ways(doc: Any) -> None:
    assert_is_a_result(validate_document(doc, SEED_TAXONOMY))
    try:
        raw = json.dumps(doc).encode()
    except (RecursionError, ValueError):
        return
    assert_is_a_result(validate_bytes(raw, SEED_TAXONOMY))


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(raw: bytes) -> None:
    assert_is_a_result(validate_bytes(raw, SEED_TAXONOMY))


@FUZZ
@given(st.binary(max_size=256), st.integers(min_value=0, max_value=300))
def test_any_bytes_against_any_limit(raw: bytes, limit: int) -> None:
    result = validate_bytes(raw, SEED_TAXONOMY, max_bytes=limit)
    assert_is_a_result(result)
    if len(raw) > limit:
        assert result == Rejected(["payload_too_large"], [f"{len(raw)} bytes > limit {limit}"])


@FUZZ
@given(json_values)
def test_any_json_value(doc: Any) -> None:
    check_both_ways(doc)


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=12))
def test_any_object_over_the_event_fields(doc: dict[str, Any]) -> None:
    check_both_ways(doc)


def _nest(value: Any, levels: int, as_list: bool) -> Any:
    for _ in range(levels):
        value = [value] if as_list else {"n": value}
    return value


mutations = st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(FIELDS), st.none()),
    st.tuples(st.just("set"), st.sampled_from(FIELDS) | st.text(max_size=10), json_values),
    st.tuples(st.just("huge"), st.sampled_from(FIELDS), st.integers(1, 200_000)),
    st.tuples(st.just("deep"), st.sampled_from(FIELDS), st.integers(0, 1500)),
    st.tuples(st.just("unicode"), st.sampled_from(FIELDS), st.text(min_size=1, max_size=40)),
)


def _mutate(doc: dict[str, Any], mutation: tuple[str, str, Any]) -> None:
    kind, name, arg = mutation
    if kind == "delete":
        doc.pop(name, None)
    elif kind == "set":
        doc[name] = arg
    elif kind == "huge":
        doc[name] = "x" * arg
    elif kind == "deep":
        doc[name] = _nest(doc.get(name), arg, as_list=arg % 2 == 0)
    else:
        doc[name] = arg


valid_events = st.one_of(
    st.sampled_from(expected.SEED_CODE_ROWS).map(
        lambda row: brewslm(
            stage=row[0], reason_code=row[1], severity="info" if row[2] else "critical"
        )
    ),
    st.sampled_from(sorted(expected.SEED_PULSE_TYPES.items())).map(
        lambda item: pulse(event_type=item[0], severity=item[1])
    ),
)


@FUZZ
@given(valid_events, st.lists(mutations, max_size=4))
def test_any_mutation_of_a_valid_event(doc: dict[str, Any], changes: list[Any]) -> None:
    assert isinstance(validate_document(doc, SEED_TAXONOMY), Accepted)
    for change in changes:
        _mutate(doc, change)
    check_both_ways(doc)


@FUZZ
@given(valid_events, st.sampled_from(FIELDS), st.integers(90, 110))
def test_nesting_near_the_limit_is_decided_the_same_both_ways(
    doc: dict[str, Any], name: str, levels: int
) -> None:
    doc[name] = _nest(1, levels, as_list=False)
    by_doc = validate_document(doc, SEED_TAXONOMY)
    by_bytes = validate_bytes(json.dumps(doc).encode(), SEED_TAXONOMY)
    assert by_doc == by_bytes
    assert_is_a_result(by_doc)
