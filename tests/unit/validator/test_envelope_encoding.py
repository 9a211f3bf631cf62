"""The valid-stream envelope is encoded by pydantic's own serializer (the validator's hot path).

It must be byte for byte what the straightforward encoding (``model_dump(mode="json")`` into
orjson) gives, for every event the validator accepts, however odd its text, numbers or times:
the persister, the coach and any other reader of the valid stream see no difference.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.validator.logic import envelope
from shared.models import EVENT_ID_PATTERN, Event
from shared.settings import Settings
from shared.taxonomy import Taxonomy
from shared.validation import Accepted, validate_bytes
from shared.wire import DATA_FIELD, derived_event_id, unwrap_body
from tests.unit.badinput.strategies import entries, examples

NOW = datetime(2024, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Settings(_env_file=None).taxonomy  # type: ignore[call-arg]


def reference(event: Event, origin_id: str, entry_id: str, version: str) -> bytes:
    """The plain encoding the hot path replaces."""
    doc = event.model_dump(mode="json")
    event_id = doc.get("event_id") or derived_event_id(origin_id)
    doc["event_id"] = event_id
    return orjson.dumps(
        {
            "event_id": event_id,
            "dialect": doc["dialect"],
            "taxonomy_version": version,
            "accepted_at": NOW.isoformat(),
            "source_id": entry_id,
            "event": doc,
        }
    )


def accepted(fields: dict[bytes, bytes], taxonomy: Taxonomy) -> Event | None:
    body = unwrap_body(fields.get(DATA_FIELD, b""))
    result = validate_bytes(body, taxonomy) if body else None
    return result.event if isinstance(result, Accepted) else None


def with_id(fields: dict[bytes, bytes], event_id: str | None) -> dict[bytes, bytes]:
    """The entry with its event's id set (most producers send one: the hot path)."""
    try:
        doc = orjson.loads(unwrap_body(fields.get(DATA_FIELD, b"")) or b"")
    except orjson.JSONDecodeError:
        return fields
    if event_id is None or not isinstance(doc, dict):
        return fields
    try:
        return {**fields, DATA_FIELD: orjson.dumps({**doc, "event_id": event_id})}
    except TypeError:  # nested beyond what orjson writes: the validator rejects it anyway
        return fields


@given(fields=entries(), event_id=st.one_of(st.none(), st.from_regex(EVENT_ID_PATTERN)))
@settings(max_examples=examples(400, 5000), suppress_health_check=[HealthCheck.too_slow])
def test_the_envelope_is_the_plain_encoding_byte_for_byte(
    fields: dict[bytes, bytes], event_id: str | None, taxonomy: Taxonomy
) -> None:
    # Given any entry the validator accepts, with or without its own event id
    event = accepted(with_id(fields, event_id), taxonomy)
    if event is None:
        return
    # When the validator wraps it
    wrapped = envelope(event, "1717200000000-0", "1717200000001-0", taxonomy.version, NOW)
    # Then the bytes are those of the plain encoding
    assert wrapped == reference(event, "1717200000000-0", "1717200000001-0", taxonomy.version)


def test_an_event_without_an_id_gets_the_derived_one_in_both_places(taxonomy: Taxonomy) -> None:
    # Given an accepted event that carries no event id
    payload = {"text": "é \u2028 \U0001f600", "x": 1.5e300}
    doc = {"project_id": 1, "run_id": "r-1", "stage": "training", "severity": "info",
           "payload": payload, "ts": "2026-01-01T00:00:00+05:00"}  # fmt: skip
    event = accepted({DATA_FIELD: orjson.dumps(doc)}, taxonomy)
    assert event is not None and event.event_id is None
    # When it is wrapped
    wrapped = orjson.loads(envelope(event, "5-0", "6-0", taxonomy.version, NOW))
    # Then the envelope and the event carry the id derived from the origin entry
    assert wrapped["event_id"] == wrapped["event"]["event_id"] == derived_event_id("5-0")
    assert wrapped["event"]["ts"] == "2025-12-31T19:00:00Z"
