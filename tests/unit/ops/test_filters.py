"""Dead-letter filters: the checks of stages and sources, the matcher, the redrive guard."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ops.errors import (
    InvalidReasonFilter,
    InvalidSourceFilter,
    InvalidStageFilter,
    RedriveFilterRequired,
)
from services.ops.filters import (
    SOURCE_KINDS,
    STAGE_NAMES,
    check_source_filters,
    check_stage_filters,
    matcher,
    matcher_of,
    redrive_filter,
    selection_filter,
)
from services.ops.models import DeadLetterFilter
from shared.names import Names, StreamKind
from shared.pipeline import PIPELINE
from tests.unit.ops.builders import dead_fields

NAMES = Names("ns")


def test_the_choices_come_from_the_pipeline() -> None:
    assert STAGE_NAMES == PIPELINE.stage_names == ("validator", "persister", "coach")
    # a dead letter comes from a stream some stage reads: never from the dead stream itself
    assert SOURCE_KINDS == (StreamKind.EVENTS, StreamKind.VALID)


@pytest.mark.parametrize("bad", ["nope", "Validator", "", "validator ", "\x00", "é" * 100])
def test_a_stage_that_is_none_is_refused_with_its_code(bad: str) -> None:
    with pytest.raises(InvalidStageFilter) as caught:
        check_stage_filters(["validator", bad])
    assert caught.value.code == "invalid_stage_filter" and caught.value.field == "stage"
    assert len(caught.value.message) < 200  # a long value is cut in the message


@pytest.mark.parametrize("bad", ["dead", "{ns}:events", "EVENTS", "", "audit"])
def test_a_source_is_a_role_a_stage_reads_never_a_key(bad: str) -> None:
    assert check_source_filters(["valid", "events"]) == (StreamKind.VALID, StreamKind.EVENTS)
    with pytest.raises(InvalidSourceFilter) as caught:
        check_source_filters([bad])
    assert caught.value.code == "invalid_source_filter"


def test_the_matcher_needs_every_condition_and_any_value_of_each() -> None:
    persisted = dead_fields(["persist_rejected"], stage="persister", source_stream=NAMES.valid)
    validated = dead_fields(["malformed_json"], stage="validator", source_stream=NAMES.events)
    coached = dead_fields(["coach_failed"], stage="coach", source_stream=NAMES.valid)
    letters = [persisted, validated, coached]

    def kept(**conditions: list[str]) -> list[int]:
        match = matcher(NAMES, **conditions)
        return [i for i, fields in enumerate(letters) if match(fields)]

    assert kept() == [0, 1, 2]
    assert kept(stages=["persister", "coach"]) == [0, 2]
    assert kept(sources=["events"]) == [1]
    assert kept(sources=["valid"], stages=["coach"]) == [2]
    assert kept(sources=["valid"], reasons=["persist_rejected"]) == [0]
    assert kept(sources=["events"], stages=["coach"]) == []


def test_a_source_role_means_that_stream_in_every_partition() -> None:
    names = Names("ns", partitions=3)
    match = matcher(names, sources=["valid"])
    for partition in names.all_partitions:
        assert match(dead_fields(["persist_rejected"], source_stream=partition.valid))
        assert not match(dead_fields(["malformed_json"], source_stream=partition.events))
    # a stream of another namespace, or one a redrive --to wrote, is no partition's
    assert not match(dead_fields(["persist_rejected"], source_stream="{other}:valid"))


def test_the_matcher_checks_what_it_is_given() -> None:
    with pytest.raises(InvalidReasonFilter):
        matcher(NAMES, reasons=["42"])
    with pytest.raises(InvalidStageFilter):
        matcher_of(NAMES, DeadLetterFilter(stages=("api",)))


def test_stages_or_sources_alone_are_a_redrive_filter() -> None:
    with pytest.raises(RedriveFilterRequired):
        redrive_filter()
    assert redrive_filter(stages=["persister"]).stages == ("persister",)
    flt = redrive_filter(sources=["valid"])
    # the audit record names the role as text
    assert flt.describe() == {"sources": ["valid"]}
    assert not DeadLetterFilter(sources=(StreamKind.VALID,)).is_empty()


def test_a_selection_filter_carries_every_condition() -> None:
    flt = selection_filter(
        reasons=["malformed_json"],
        stages=["validator"],
        sources=["events"],
        ids=["1-0"],
        since=timedelta(hours=2),
        before=timedelta(minutes=5),
    )
    assert flt.describe() == {
        "reasons": ["malformed_json"], "ids": ["1-0"], "stages": ["validator"],
        "sources": ["events"], "since_s": 7200.0, "before_s": 300.0,
    }  # fmt: skip
    assert selection_filter().is_empty()
