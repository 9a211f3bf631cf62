"""Each coach rule, as a pure function of events: raised, cleared by a later success, and
never cleared by a success that happened earlier (whatever order the events arrive in)."""

from __future__ import annotations

import pytest

from services.coach import logic
from shared.models import COACH_STAGES, PulseEvent, RunEvent
from shared.taxonomy import SEED_TAXONOMY
from tests.unit.coach.builders import event, pulse, state_of, success, suggestions, titles
from tests.unit.coach.cases import CASES, Case

P = 7


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_rule_raises_its_suggestion(case: Case) -> None:
    # given the events that raise the rule
    found = suggestions(case.stage, case.raise_(P))
    # then the stage suggests it, with its severity, action kind and params
    case.check(found)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_later_success_clears_it(case: Case) -> None:
    # given the rule raised, then a success later in event time
    found = suggestions(case.stage, case.raise_(P) + case.clear(P))
    # then the suggestion is gone
    assert case.find(found) is None, titles(found)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_arrival_order_does_not_matter(case: Case) -> None:
    # given the clearing events arrive first and the failure (earlier in event time) after
    found = suggestions(case.stage, case.clear(P) + case.raise_(P))
    # then the later success still wins: decided by event time, not arrival
    assert case.find(found) is None, titles(found)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_redelivery_does_not_count_twice(case: Case) -> None:
    # given every raising event delivered three times
    events = case.raise_(P)
    once = suggestions(case.stage, events)
    thrice = suggestions(case.stage, events * 3)
    # then nothing changes
    assert thrice == once


def test_failure_after_success_raises_again() -> None:
    # given OOM at t=1, a success at t=100, and another OOM at t=200
    events = [
        event("training_oom", t=1),
        success("training", t=100),
        event("training_oom", t=200, run_id="exp-2"),
    ]
    # then the latest OOM is suggested, naming its run
    found = suggestions("training", events)
    assert titles(found) == ["Training ran out of GPU memory"]
    assert found[0].action.params["run_id"] == "exp-2"


def test_one_runtime_error_is_not_repeated() -> None:
    # given a single runtime error
    assert suggestions("training", [event("training_runtime_error", t=1)]) == []
    # and two runtime errors: repeated, a warning
    two = suggestions("training", [event("training_runtime_error", t=i) for i in (1, 2)])
    assert [(s.severity, s.title) for s in two] == [("warning", "Training failed 2 times in a row")]


def test_only_errors_after_the_last_success_count() -> None:
    # given 2 errors, a success, then 1 error (all by event time)
    events = [event("training_runtime_error", t=i) for i in (1, 2)]
    events += [success("training", t=5), event("training_runtime_error", t=9)]
    # then the run of failures restarted: not repeated
    assert suggestions("training", events) == []


def test_cancelled_training_raises_nothing() -> None:
    assert suggestions("training", [event("training_cancelled", t=1)]) == []


def test_small_clusters_are_noise_and_the_biggest_come_first() -> None:
    clusters = [{"id": f"c{i}", "size": size} for i, size in enumerate((2, 5, 50, 8, 3, 30, 4))]
    found = suggestions("eval", [event(stage="eval", t=1, payload={"failure_clusters": clusters})])
    params = [s.action.params["cluster_id"] for s in found]
    # then size 2 is dropped, at most 5 are kept, biggest first (warnings before infos)
    assert params == ["c2", "c5", "c3", "c1", "c6"]
    assert [s.severity for s in found] == ["warning", "warning", "info", "info", "info"]


def test_a_completed_eval_without_clusters_clears_them() -> None:
    report = event(stage="eval", t=1, payload={"failure_clusters": [{"id": "c", "size": 9}]})
    assert len(suggestions("eval", [report])) == 1
    assert suggestions("eval", [report, success("eval", t=2)]) == []


def test_suggestions_are_ordered_most_severe_first() -> None:
    # given a review queue (info), an outlier cap (warning) and a PII block (critical)
    events = [
        event(stage="cleaning", t=1, payload={"review_queue": 3}),
        event("cleaning_outlier_threshold_exceeded", t=2),
        event("cleaning_pii_block", t=3),
    ]
    found = suggestions("cleaning", events)
    assert [s.severity for s in found] == ["critical", "warning", "info"]


@pytest.mark.parametrize("stage", ["export", "deployment", "autopilot", "system"])
def test_uncoached_stages_change_nothing(stage: str) -> None:
    # given only events of a stage the coach does not speak at (failures included)
    codes = [c.code for c in SEED_TAXONOMY.codes_by_stage()[stage]]
    events = [event(code, t=i) for i, code in enumerate(codes)] + [event(stage=stage, t=99)]
    # then no fact, so no stage has anything to say
    assert state_of(events) == {}
    for coach_stage in COACH_STAGES:
        assert suggestions(coach_stage, events) == []


def test_pulse_events_change_nothing() -> None:
    events = [pulse("run.failed"), pulse("stage.failed"), pulse("lease.lost", project=None)]
    assert state_of(events) == {}


def test_an_uncoached_event_does_not_disturb_a_coached_project() -> None:
    base: list[RunEvent | PulseEvent] = [event("training_oom", t=1)]
    extra: list[RunEvent | PulseEvent] = [
        event("deployment_smoke_failed", t=2),
        pulse("run.completed"),
    ]
    assert state_of([*base, *extra]) == state_of(base)


def test_every_coach_stage_has_a_generator() -> None:
    assert set(logic.GENERATORS) == set(COACH_STAGES)
