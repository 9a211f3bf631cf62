"""Event builders for coach stories (used by the unit and the integration tier).

Every event is checked against the real contract (`validate_document` with the seed taxonomy),
so a story can never rely on an event the validator would have rejected.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.coach import logic
from services.coach.facts import Fact, merge
from services.validator.logic import envelope
from shared.models import PulseEvent, RunEvent, Suggestion, ValidEnvelope
from shared.taxonomy import SEED_TAXONOMY
from shared.validation import Accepted, validate_document
from shared.wire import parse_envelope

BASE = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PROJECT = 7
_ids = itertools.count(1)


def at(seconds: float) -> str:
    """An event time `seconds` after BASE, as JSON text."""
    return (BASE + timedelta(seconds=seconds)).isoformat()


def event(
    code: str | None = None,
    *,
    t: float = 0,
    stage: str | None = None,
    severity: str | None = None,
    project: int = PROJECT,
    payload: dict[str, Any] | None = None,
    event_id: str | None = None,
    **extra: Any,
) -> RunEvent:
    """A valid RunEvent; stage and severity default from the reason code's taxonomy entry."""
    known = SEED_TAXONOMY.reason_codes.get(code) if code else None
    if stage is None:
        stage = known.stage if known else "training"
    if severity is None:
        severity = "info" if known is None or known.info_only else "error"
    doc: dict[str, Any] = {
        "event_id": event_id or f"ev-{next(_ids):06d}",
        "project_id": project,
        "run_id": extra.pop("run_id", f"{stage}-1"),
        "stage": stage,
        "severity": severity,
        "payload": payload or {},
        "ts": at(t),
        **extra,
    }
    if code is not None:
        doc["reason_code"] = code
    result = validate_document(doc, SEED_TAXONOMY)
    assert isinstance(result, Accepted), result
    assert isinstance(result.event, RunEvent)
    return result.event


def success(stage: str, *, t: float = 0, project: int = PROJECT, **payload: Any) -> RunEvent:
    """An info event reporting a finished step of `stage` (``payload.status = completed``)."""
    return event(stage=stage, severity="info", t=t, project=project,
                 payload={"status": "completed", **payload})  # fmt: skip


def pulse(event_type: str = "run.failed", *, project: int | None = PROJECT) -> PulseEvent:
    """A valid Pulse event."""
    doc: dict[str, Any] = {
        "event_id": f"pu-{next(_ids):06d}",
        "run_id": "run-1",
        "event_type": event_type,
        "severity": SEED_TAXONOMY.pulse_types[event_type],
        "created_at": at(0),
        "project_id": project,
    }
    result = validate_document(doc, SEED_TAXONOMY)
    assert isinstance(result, Accepted), result
    assert isinstance(result.event, PulseEvent)
    return result.event


def body(ev: RunEvent | PulseEvent, entry_id: str = "1-0") -> bytes:
    """The valid-stream ``__data__`` the validator would write for `ev`."""
    return envelope(ev, entry_id, entry_id, SEED_TAXONOMY.version, BASE)


def wrap(ev: RunEvent | PulseEvent, entry_id: str = "1-0") -> ValidEnvelope:
    """The envelope the validator would write for `ev`."""
    return parse_envelope(body(ev, entry_id))


def state_of(events: Iterable[RunEvent | PulseEvent]) -> dict[str, Fact]:
    """The project state the coach derives from `events` (pure fold)."""
    state: dict[str, Fact] = {}
    for ev in events:
        merge(state, logic.facts_from_envelope(wrap(ev)))
    return state


def suggestions(stage: str, events: Iterable[RunEvent | PulseEvent]) -> list[Suggestion]:
    """What the coach suggests at `stage` after `events`."""
    return logic.suggest(stage, state_of(events))


def titles(found: Iterable[Suggestion]) -> list[str]:
    """The titles of suggestions, in order."""
    return [s.title for s in found]
