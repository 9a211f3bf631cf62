"""Gold set, exactly as the seed's thresholds: boundaries, top-up clamps, what counts as rows."""

from __future__ import annotations

from typing import Any

import pytest

from services.coach.generators import gold_set
from services.coach.generators.gold_set import (
    GOLD_ROW_COMFORTABLE_MIN,
    GOLD_ROW_THIN_MAX,
    SUGGESTED_TOPUP_CEILING,
    SUGGESTED_TOPUP_FLOOR,
)
from tests.unit.coach.builders import event, state_of, suggestions


def promoted(rows: Any, target: str = "gold_set", t: float = 0, **kw: Any) -> Any:
    return event("annotation_rows_promoted", t=t, payload={"target": target, "rows": rows}, **kw)


def test_the_seed_constants() -> None:
    assert (GOLD_ROW_THIN_MAX, GOLD_ROW_COMFORTABLE_MIN) == (99, 300)
    assert (SUGGESTED_TOPUP_FLOOR, SUGGESTED_TOPUP_CEILING) == (20, 500)


@pytest.mark.parametrize(
    ("rows", "severity", "topup"),
    [
        (0, "critical", 300),
        (78, "critical", 222),
        (99, "critical", 201),
        (100, "warning", 200),
        (285, "warning", 20),  # 15 wanted: clamped up to the floor
        (299, "warning", 20),  # 1 wanted: clamped up to the floor
        (300, None, None),
        (1000, None, None),
        (-250, "critical", 500),  # 550 wanted (rows demoted): clamped down to the ceiling
    ],
)
def test_boundaries(rows: int, severity: str | None, topup: int | None) -> None:
    # given promotions summing to `rows`
    found = suggestions("gold_set", [promoted(rows)])
    if severity is None:
        # then from the comfortable size on, no top-up is suggested
        assert found == []
        return
    # then one suggestion naming the count, with the seed's severity and top-up
    assert len(found) == 1
    (s,) = found
    assert s.severity == severity
    assert s.title == f"Your gold set has {rows} rows"
    assert s.action.kind == "run_playbook"
    assert s.action.params == {"playbook": "gold_set_topup", "target": "gold_set", "rows": topup}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(0, 300), (280, 20), (281, 20), (299, 20), (-200, 500), (-201, 500), (-1000, 500), (50, 250)],
)
def test_topup_clamps(rows: int, expected: int) -> None:
    assert gold_set.topup(rows) == expected


def test_title_names_the_count_from_the_seed() -> None:
    found = suggestions("gold_set", [promoted(50, t=1), promoted(28, t=2)])
    assert [s.title for s in found] == ["Your gold set has 78 rows"]


def test_rows_sum_over_events_and_each_event_counts_once() -> None:
    a, b = promoted(60, t=1), promoted(60, t=2)
    # given each promotion delivered twice, in both orders
    state = state_of([a, b, b, a])
    assert gold_set.gold_rows(state) == 120


@pytest.mark.parametrize(
    "payload",
    [
        {"target": "training_set", "rows": 500},
        {"rows": 500},
        {"target": "gold_set", "rows": "500"},
        {"target": "gold_set", "rows": 500.0},
        {"target": "gold_set", "rows": True},
        {"target": "gold_set"},
    ],
)
def test_only_integer_rows_promoted_to_the_gold_set_count(payload: dict[str, Any]) -> None:
    ev = event("annotation_rows_promoted", t=1, payload=payload)
    assert gold_set.gold_rows(state_of([ev])) == 0


def test_other_codes_with_rows_do_not_count() -> None:
    ev = event("annotation_label_submitted", t=1, payload={"target": "gold_set", "rows": 500})
    assert gold_set.gold_rows(state_of([ev])) == 0


def test_silent_until_the_project_is_active() -> None:
    assert gold_set.suggest({}) == []
    # any coached activity makes the (empty) gold set worth a word
    found = suggestions("gold_set", [event("training_oom", t=1)])
    assert [s.title for s in found] == ["Your gold set has 0 rows"]
