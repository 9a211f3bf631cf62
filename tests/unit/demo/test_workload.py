"""The demo workload: valid where it should be, invalid where it should be, and every coach
stage of every project ends up with something to say (checked with the coach's own rules)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from services.coach import logic as coach
from services.coach.facts import Fact, merge
from services.demo.logic import (
    INVALID_BODIES,
    autopilot_runs,
    invalid_count,
    project_story,
    projects_of,
    workload,
)
from shared.models import COACH_STAGES, RunEvent
from shared.taxonomy import SEED_TAXONOMY
from shared.validation import Accepted, Rejected, validate_bytes, validate_document

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_every_story_event_is_valid_and_in_time_order() -> None:
    for variant in range(4):
        events = project_story(10 + variant, variant, 80, NOW, seed=3)
        for event in events:
            assert isinstance(validate_document(event, SEED_TAXONOMY), Accepted), event
        times = [e.get("ts") or e["created_at"] for e in events]
        assert times == sorted(times)


def test_every_invalid_body_is_rejected() -> None:
    for body in INVALID_BODIES:
        assert isinstance(validate_bytes(body, SEED_TAXONOMY), Rejected), body


@pytest.mark.parametrize("size", [26, 60, 500])
def test_size_is_the_number_of_events_per_project(size: int) -> None:
    assert len(project_story(1, 0, size, NOW, seed=1)) == size


def test_the_invalid_share_matches_the_ratio() -> None:
    items = workload(4, 100, 0.2, seed=5, now=NOW)
    invalid = sum(1 for item in items if item.raw is not None)
    assert invalid == invalid_count(400, 0.2) == 100
    assert abs(invalid / len(items) - 0.2) < 0.01
    assert workload(2, 30, 0.0, seed=1, now=NOW)[0].raw is None
    assert all(item.raw is None for item in workload(2, 30, 0.0, seed=1, now=NOW))


def test_same_seed_same_workload_and_projects_start_where_asked() -> None:
    one = workload(3, 40, 0.1, first_project=50, seed=9, now=NOW)
    two = workload(3, 40, 0.1, first_project=50, seed=9, now=NOW)
    assert one == two
    assert projects_of(one) == [50, 51, 52]
    assert len(autopilot_runs(one)) == 3


def test_every_coach_stage_of_every_project_has_a_suggestion() -> None:
    # given the whole workload folded into the coach's state, as the coach worker does
    states: dict[int, dict[str, Fact]] = defaultdict(dict)
    for n, item in enumerate(workload(4, 60, 0.05, seed=2, now=NOW)):
        if item.event is None:
            continue
        result = validate_document(item.event, SEED_TAXONOMY)
        assert isinstance(result, Accepted)
        event = result.event
        if isinstance(event, RunEvent):
            merge(states[event.project_id], coach.facts_from_event(event, f"demo-{n}"))
    # then each of the five coach stages speaks for each project
    assert sorted(states) == [1, 2, 3, 4]
    for project, state in states.items():
        for stage in COACH_STAGES:
            assert coach.suggest(stage, state), (project, stage)
    # and the OOM was cleared by its successful retry (decided by event time)
    titles = [s.title for s in coach.suggest("training", states[1])]
    assert not any("out of GPU memory" in t for t in titles)
