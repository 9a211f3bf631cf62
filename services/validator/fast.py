"""The validator's fast path: an accepted event decoded, checked and encoded in one msgspec pass.

Most entries are valid events, and for them the validator needs no pydantic model: msgspec
decodes the body straight into a struct derived from the event's model (`struct_of(...,
strict=True)`: names, types, defaults, bounds and patterns, unknown fields refused), the
taxonomy's own checks run on its values and the model's own validator on its time, and msgspec
encodes the envelope's event from it.

The fast path only ever accepts. On anything it refuses, and on every input where msgspec could
read or write something other than pydantic does, it answers None and the validator judges the
entry by the pydantic path (`logic.reference_judge`): rejections, their codes and messages stay
that path's, and an event the fast path accepts gets the envelope the pydantic path writes,
byte for byte (property tests: tests/unit/validator/test_fast_path.py). Where the two differ,
the fast path declines:

- times: only RFC 3339 text, ``YYYY-MM-DDTHH:MM:SS[.f]`` with one to six fractional digits and
  ``Z``, ``±HH:MM`` or no offset, parsed by `datetime.fromisoformat`; pydantic reads more
  (numbers, other ISO 8601 forms) and truncates a seventh digit where msgspec would round it;
- numbers: the pydantic path's parser (orjson) reads an integer beyond 64 bits as a float, and
  pydantic writes a float of magnitude 1e16 or more as ``1e+16`` where msgspec writes ``1e16``:
  an event whose free-form objects msgspec does not write as orjson does is declined;
- nesting: a body with more than `MAX_NESTING` brackets (the pydantic path measures its depth).

JSON syntax, UTF-8, escapes, lone surrogates, NaN, duplicate keys (the last wins) and string
lengths (code points) read the same in both (the property tests hold it).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
import orjson
from pydantic import BaseModel

from shared.models import Event, PulseEvent, RunEvent
from shared.taxonomy import Taxonomy
from shared.valid_stream import struct_of
from shared.validation import MAX_NESTING, brewslm_checks, pulse_checks

#: The times the fast path reads: RFC 3339 as producers write it. `fromisoformat` and pydantic
#: read each of these as the same instant (property test over text drawn from this pattern).
RFC3339: Final = (
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
Checks = Callable[[Any, Taxonomy], list[str]]
#: The taxonomy's checks of each dialect, on a struct's values: the error codes (none: passed).
_CHECKS: Final[dict[type[BaseModel], Checks]] = {
    RunEvent: lambda e, tax: brewslm_checks(e.stage, e.severity, e.reason_code, tax)[0],
    PulseEvent: lambda e, tax: pulse_checks(e.event_type, e.severity, tax)[0],
}


def written_alike(value: Any) -> bool:
    """msgspec writes a free-form value as orjson (so pydantic) does: its numbers in range.

    They differ on an integer beyond 64 bits (orjson refuses it) and on a float of magnitude
    1e16 or more (``1e+16`` against ``1e16``); two encodings in C cost less than a walk.
    """
    try:
        return orjson.dumps(value) == _ENCODER.encode(value)
    except TypeError:
        return False


@dataclass(frozen=True, slots=True)
class Gate:
    """One dialect's fast path: its struct's decoder, its time fields' validators, its checks."""

    decoder: msgspec.json.Decoder[Any]
    times: tuple[tuple[str, Callable[[datetime], datetime]], ...]
    checks: Checks
    #: The fields of any JSON value (the free-form objects), where numbers are not typed.
    free: tuple[str, ...]

    def admits(self, event: Any, taxonomy: Taxonomy) -> bool:
        """Its times parsed and validated as the model does (in place), then the taxonomy's."""
        for name, validate in self.times:
            setattr(event, name, validate(datetime.fromisoformat(getattr(event, name))))
        return not self.checks(event, taxonomy)


def gate_of(model: type[BaseModel]) -> Gate:
    """The fast path of one event model; `TypeError` for a model it cannot follow exactly."""
    validators = _time_validators(model)
    text = Annotated[str, msgspec.Meta(pattern=RFC3339)]
    struct = struct_of(model, dict[str, Any], strict=True, **dict.fromkeys(validators, text))
    free = tuple(n for n, f in model.model_fields.items() if _free(f.annotation))
    return Gate(msgspec.json.Decoder(struct), tuple(validators.items()), _CHECKS[model], free)


def _free(annotation: Any) -> bool:
    """A field that holds any JSON value somewhere (``dict[str, Any]``, optional or not)."""
    return Any in typing.get_args(annotation) or any(map(_free, typing.get_args(annotation)))


def _time_validators(model: type[BaseModel]) -> dict[str, Callable[[datetime], datetime]]:
    """Each datetime field and its validator: the only kind of validation the gate runs."""
    decorators = model.__pydantic_decorators__
    others = (decorators.model_validators, decorators.validators, decorators.root_validators,
              decorators.field_serializers, decorators.model_serializers,
              decorators.computed_fields)  # fmt: skip
    if any(others):
        raise TypeError(f"{model.__name__}: validators or serializers the fast path lacks")
    times = [n for n, f in model.model_fields.items() if f.annotation is datetime]
    found: dict[str, Callable[[datetime], datetime]] = {}
    for decorator in decorators.field_validators.values():
        fields, mode = decorator.info.fields, decorator.info.mode
        if mode != "after" or not set(fields) <= set(times) or set(fields) & set(found):
            raise TypeError(f"{model.__name__}: a field validator the fast path cannot run")
        found |= dict.fromkeys(fields, decorator.func)
    return {name: found.get(name, _unchanged) for name in times}


def _unchanged(value: datetime) -> datetime:
    return value


#: The gate of each event model, in the order tried (BrewSLM first: most of the traffic).
GATES: Final = tuple(gate_of(model) for model in typing.get_args(Event))
_ENCODER: Final = msgspec.json.Encoder()


def accepted(body: bytes, taxonomy: Taxonomy) -> Any | None:
    """The checked struct of a body the pydantic path accepts; None when not sure it does."""
    if body.count(b"[") + body.count(b"{") > MAX_NESTING:
        return None
    for gate in GATES:
        try:
            event = gate.decoder.decode(body)
        except msgspec.ValidationError:
            continue  # not of this dialect (or of none: the pydantic path says why)
        except msgspec.DecodeError:
            return None  # not JSON: the pydantic path words the error
        for name in gate.free:
            if not written_alike(getattr(event, name)):
                return None
        try:
            return event if gate.admits(event, taxonomy) else None
        except Exception:  # any doubt (a time out of range, an overflow): the pydantic path
            return None
    return None


def encode(event: Any) -> bytes:
    """The event's JSON as pydantic writes it: the model's fields in order, times in UTC."""
    return _ENCODER.encode(event)
