"""What must hold for every entry, whatever it contains: the invariants of bad input.

- a valid entry's text reaches the valid stream verbatim: every field the producer sent is
  in the envelope's event with the same value (strings equal code point for code point after
  JSON decoding), the event re-validates downstream and its id follows the id pattern;
- the stages after the validator, which decode the envelope without validating it again
  (`shared.valid_stream`), read the same values as a pydantic validation of it: the
  persister's record, the coach's facts;
- a rejected entry carries only documented error codes (none of them "the handler crashed"),
  and its dead letter keeps the original bytes and fields unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from services.coach import logic
from services.history.records import decode_envelope, record_of_envelope
from shared.models import (
    EVENT_ID_PATTERN,
    DeadLetter,
    PulseEvent,
    RunEvent,
    ValidEnvelope,
    event_time,
)
from shared.wire import DATA_FIELD, parse_envelope, unwrap_body
from tests.unit.badinput.corpus import FAMILIES

Fields = dict[bytes, bytes]
TIME_FIELDS = frozenset({"ts", "created_at"})


def families(errors: list[str]) -> set[str]:
    """The family of each code (the part before ':')."""
    return {code.split(":", 1)[0] for code in errors}


def check_codes(errors: list[str]) -> None:
    """At least one code, and every code of a documented family."""
    assert errors, "a rejection without a code"
    unknown = families(errors) - FAMILIES
    assert not unknown, f"undocumented error codes {sorted(unknown)}: {errors}"


def check_valid(sent: Fields, envelope: ValidEnvelope) -> None:
    """The envelope carries the sent event unchanged."""
    body = unwrap_body(sent[DATA_FIELD])
    assert body is not None
    doc: dict[str, Any] = orjson.loads(body)
    model: type[RunEvent] | type[PulseEvent] = (
        RunEvent if envelope.dialect == "brewslm" else PulseEvent
    )
    stored = model.model_validate(envelope.event)  # what the persister and coach will read
    assert re.fullmatch(EVENT_ID_PATTERN, envelope.event_id), envelope.event_id[:200]
    assert envelope.event["event_id"] == envelope.event_id
    for key, value in doc.items():
        if key == "event_id" and value is None:
            continue  # no id given: one is derived from the entry id
        if key in TIME_FIELDS:
            assert getattr(stored, key) == getattr(model.model_validate(doc), key)
        else:
            assert envelope.event[key] == value, f"{key} changed on its way"


def check_trusted(data: bytes) -> None:
    """The persister's record of a valid-stream body holds what pydantic reads in it."""
    envelope = parse_envelope(data)
    model: type[RunEvent] | type[PulseEvent] = (
        RunEvent if envelope.dialect == "brewslm" else PulseEvent
    )
    event = model.model_validate(envelope.event)
    record = record_of_envelope(decode_envelope(data))
    for name, got in record._asdict().items():
        if name in ("payload", "details"):
            got = None if got is None else json.loads(got)  # stdlib: ints of any size
            want = getattr(event, name, None)
        elif name == "ts":
            want = event_time(event)
        elif name in ValidEnvelope.model_fields:
            want = getattr(envelope, name)
        else:
            want = getattr(event, name, None)
        assert got == want, f"{name}: {got!r} != {want!r}"


def check_coached(data: bytes) -> None:
    """The coach's facts of a valid-stream body are the facts of its pydantic event."""
    envelope = parse_envelope(data)
    want = logic.facts_from_event(logic.event_of(envelope), envelope.event_id)
    event_id, event = logic.decode_event(data)
    assert event_id == envelope.event_id
    assert logic.facts_from_event(event, event_id) == want
    assert not logic.plan_batch([("1-0", data)]).malformed


def check_dead(sent: Fields, letter: DeadLetter, source_id: str) -> None:
    """The dead letter explains the rejection and keeps the entry as it was."""
    check_codes(letter.errors)
    assert letter.source_id == source_id
    assert letter.stage == "validator"
    assert letter.original == sent.get(DATA_FIELD, b"")
    others = {k.decode("utf-8", "surrogateescape"): v for k, v in sent.items() if k != DATA_FIELD}
    assert letter.original_fields == others
