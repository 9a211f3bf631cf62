"""Builders of dead letters for the ops tests (unit and integration)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from shared.models import DeadLetter
from shared.wire import Fields, dead_letter_fields, hint_of


def brewslm_body(**overrides: Any) -> bytes:
    """A BrewSLM event body (by default with an unknown reason code)."""
    doc: dict[str, Any] = {
        "project_id": 7,
        "run_id": "exp-42",
        "stage": "training",
        "severity": "error",
        "reason_code": "train_gpu_on_fire",
        "summary": "loss exploded",
        "ts": "2025-01-01T00:00:00Z",
    }
    doc.update(overrides)
    return orjson.dumps(doc)


def dead_letter(
    errors: list[str],
    body: bytes | None = None,
    *,
    stage: str = "validator",
    source_stream: str = "{ns}:events",
    source_id: str = "1700000000000-0",
    original_fields: dict[str, bytes] | None = None,
) -> DeadLetter:
    """A dead letter as a stage would write it."""
    original = brewslm_body() if body is None else body
    now = datetime.now(UTC)
    return DeadLetter(
        errors=errors,
        message="; ".join(errors),
        original=original,
        original_fields=original_fields or {},
        source_stream=source_stream,
        source_id=source_id,
        group=stage,
        consumer=f"{stage}-host-0",
        stage=stage,
        delivery_count=1,
        first_seen=now,
        dead_at=now,
        taxonomy_version="tx-test",
        service_version="0.1.0",
        hint=hint_of(original),
    )


def dead_fields(errors: list[str], body: bytes | None = None, **kwargs: Any) -> Fields:
    """The entry fields of a dead letter (what XADD to the dead stream gets)."""
    return dead_letter_fields(dead_letter(errors, body, **kwargs))
