"""Rebuild's reading of history rows: both dialects become events; a broken row is skipped."""

from __future__ import annotations

from datetime import UTC, datetime

from msgspec.structs import replace

from services.coach import logic
from services.coach.rebuild import event_of
from services.history import HistoryRow
from shared.models import PulseEvent, RunEvent
from tests.unit.coach.builders import event, wrap

TS = datetime(2026, 5, 1, 12, tzinfo=UTC)


def brewslm_row(**overrides: object) -> HistoryRow:
    row = HistoryRow(
        id=1, event_id="ev-1", dialect="brewslm", project_id=7, run_id="exp-1",
        parent_run_id="autopilot-1", severity="error", ts=TS, created_at=TS, accepted_at=TS,
        taxonomy_version="tx", source_id="1-0", stage="training", reason_code="training_oom",
        actor=None, summary="CUDA OOM", payload={"batch_size": 32},
    )  # fmt: skip
    return replace(row, **overrides)


def test_a_brewslm_row_reads_as_the_event_the_live_worker_saw() -> None:
    found = event_of(brewslm_row())
    assert found is not None
    ev, event_id = found
    assert isinstance(ev, RunEvent) and event_id == "ev-1"
    live = event("training_oom", t=0, project=7, payload={"batch_size": 32}, event_id="ev-1",
                 run_id="exp-1", parent_run_id="autopilot-1", summary="CUDA OOM")  # fmt: skip
    # then the facts are those of the same event arriving on the valid stream
    assert logic.facts_from_event(ev, event_id) == logic.facts_from_envelope(wrap(live))


def test_a_pulse_row_reads_as_a_pulse_event_with_no_facts() -> None:
    row = brewslm_row(dialect="pulse", stage=None, reason_code=None, payload=None,
                      event_type="run.failed", message="boom", details={"x": 1})  # fmt: skip
    found = event_of(row)
    assert found is not None and isinstance(found[0], PulseEvent)
    assert logic.facts_from_event(*found) == []


def test_a_row_that_is_no_event_is_skipped() -> None:
    assert event_of(brewslm_row(project_id=None)) is None
    assert event_of(brewslm_row(run_id="")) is None
