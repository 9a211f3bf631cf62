"""Envelopes for history stories, built the way the validator builds them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from services.validator.logic import envelope
from shared.models import ValidEnvelope
from shared.taxonomy import load_taxonomy
from shared.validation import Accepted, validate_document
from shared.wire import parse_envelope

TAXONOMY = load_taxonomy(None, "reject")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_seq = itertools.count(1)


def at(seconds: float, base: datetime = T0) -> datetime:
    """A time `seconds` after `base`."""
    return base + timedelta(seconds=seconds)


def _wrap(doc: dict[str, Any], source_id: str | None) -> ValidEnvelope:
    result = validate_document(doc, TAXONOMY)
    assert isinstance(result, Accepted), result
    entry_id = source_id or f"{1_700_000_000_000 + next(_seq)}-0"
    body = envelope(result.event, entry_id, entry_id, TAXONOMY.version, datetime.now(UTC))
    return parse_envelope(body)


def brewslm(
    run_id: str, ts: datetime, *, event_id: str | None = None, source_id: str | None = None,
    **fields: Any,
) -> ValidEnvelope:  # fmt: skip
    """A BrewSLM RunEvent envelope (defaults: project 7, training, info)."""
    doc: dict[str, Any] = {
        "project_id": 7, "run_id": run_id, "stage": "training", "severity": "info",
        "ts": ts.isoformat(), "summary": f"{run_id} at {ts.isoformat()}",
    }  # fmt: skip
    if event_id is not None:
        doc["event_id"] = event_id
    doc.update(fields)
    return _wrap(doc, source_id)


def pulse(
    run_id: str, ts: datetime, *, event_id: str | None = None, source_id: str | None = None,
    **fields: Any,
) -> ValidEnvelope:  # fmt: skip
    """A Pulse event envelope (defaults: project 7, stage.completed, info)."""
    doc: dict[str, Any] = {
        "run_id": run_id, "project_id": 7, "event_type": "stage.completed", "severity": "info",
        "message": f"{run_id} at {ts.isoformat()}", "created_at": ts.isoformat(),
    }  # fmt: skip
    if event_id is not None:
        doc["event_id"] = event_id
    doc.update(fields)
    return _wrap(doc, source_id)


def raw_envelope(event: dict[str, Any], event_id: str, dialect: str = "brewslm") -> ValidEnvelope:
    """An envelope around any event dict, bypassing validation (for poison rows)."""
    return ValidEnvelope(
        event_id=event_id,
        dialect=dialect,  # type: ignore[arg-type]
        taxonomy_version=TAXONOMY.version,
        accepted_at=datetime.now(UTC),
        source_id="1-0",
        event=event,
    )
