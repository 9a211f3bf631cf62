"""The validator's pure decision (`judge`) over the bad-input corpus and generated entries.

Fast, no Redis: the same invariants as the integration suite, on many more examples.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings

from services.validator.logic import Invalid, Valid, judge
from shared.producer import InvalidEvent, prepare
from shared.settings import Settings
from shared.taxonomy import Taxonomy
from shared.validation import Accepted, Rejected, validate_bytes, validate_document
from shared.wire import DATA_FIELD, parse_envelope
from tests.unit.badinput.checks import (
    check_coached,
    check_codes,
    check_trusted,
    check_valid,
    families,
)
from tests.unit.badinput.corpus import FAMILIES, Case, corpus, event
from tests.unit.badinput.mutate import mutants
from tests.unit.badinput.strategies import entries, examples, recipes

CASES = corpus()
NOW = datetime(2024, 6, 1, tzinfo=UTC)
ENTRY_ID = "1717200000000-0"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Settings(_env_file=None).taxonomy


def verdict(fields: dict[bytes, bytes], taxonomy: Taxonomy) -> Valid | Invalid:
    return judge(ENTRY_ID, fields, taxonomy, 64 * 1024, NOW)


def test_the_documented_families_were_found() -> None:
    # The families come from the validation module's table: a renamed table breaks this
    assert {"malformed_json", "schema_violation", "payload_too_large", "invalid_stage"} <= FAMILIES


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) > 400
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
    assert {c.expect for c in CASES} == {"valid", "dead"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_gets_its_verdict(case: Case, taxonomy: Taxonomy) -> None:
    result = verdict(case.fields, taxonomy)
    if case.expect == "valid":
        assert isinstance(result, Valid), getattr(result, "errors", None)
        check_valid(case.fields, parse_envelope(result.fields[DATA_FIELD]))
        check_trusted(result.fields[DATA_FIELD])
        check_coached(result.fields[DATA_FIELD])
    else:
        assert isinstance(result, Invalid), "accepted a case that must be rejected"
        check_codes(result.errors)
        if case.family:
            assert case.family in families(result.errors), result.errors


@settings(
    max_examples=examples(200, 10_000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fields=entries())
def test_generated_entries_never_raise_and_keep_the_invariants(
    fields: dict[bytes, bytes],
) -> None:
    result = verdict(fields, Settings(_env_file=None).taxonomy)
    if isinstance(result, Valid):
        check_valid(fields, parse_envelope(result.fields[DATA_FIELD]))
        check_trusted(result.fields[DATA_FIELD])
        check_coached(result.fields[DATA_FIELD])
    else:
        check_codes(result.errors)


@settings(max_examples=examples(20, 500), deadline=None)
@given(recipe=recipes)
def test_mutated_entries_never_raise_and_keep_the_invariants(recipe: tuple[int, list[str]]) -> None:
    taxonomy = Settings(_env_file=None).taxonomy
    for fields in mutants(recipe[0], 200, recipe[1]):
        result = verdict(fields, taxonomy)
        if isinstance(result, Valid):
            check_valid(fields, parse_envelope(result.fields[DATA_FIELD]))
            check_trusted(result.fields[DATA_FIELD])
            check_coached(result.fields[DATA_FIELD])
        else:
            check_codes(result.errors)


def _deep_list(depth: int) -> list[object]:
    root: list[object] = []
    node = root
    for _ in range(depth):
        child: list[object] = []
        node.append(child)
        node = child
    return root


@pytest.mark.parametrize(
    ("depth", "code"), [(1_000, "schema_violation:$"), (100_000, "malformed_json")]
)
def test_deep_nesting_never_raises_recursion_error(
    depth: int, code: str, taxonomy: Taxonomy
) -> None:
    # Bytes, with no size limit in the way: parsed up to the parser's depth, refused beyond
    result = validate_bytes(b"[" * depth + b"]" * depth, taxonomy, max_bytes=10**9)
    assert isinstance(result, Rejected) and result.errors == [code]
    # Documents built in Python (the producer's client-side validation): rejected, not crashed
    doc = event(payload={"a": _deep_list(depth)})
    result = validate_document(doc, taxonomy)
    assert isinstance(result, Rejected) and "schema_violation:payload" in result.errors
    with pytest.raises(InvalidEvent):
        prepare(doc, taxonomy)


def test_nesting_at_the_limit_is_accepted_and_re_encodable(taxonomy: Taxonomy) -> None:
    doc = event(payload={"a": _deep_list(97)})
    assert isinstance(validate_document(doc, taxonomy), Accepted)
    assert prepare(doc, taxonomy)
