"""Reading the valid stream without validating again: msgspec structs derived from the models.

Only the validator writes the valid stream (the ACL's ``validator`` user), and it writes each
body from an event its pydantic models accepted. The stages after it (persister, coach) need
typed values, not a second validation: msgspec builds them straight from the JSON in C, at
about a fifth of pydantic's cost, and still refuses a body of the wrong shape (a hand-written
entry, a bug upstream), which the stage then dead-letters as it always did.

The structs are derived from `ValidEnvelope`, `RunEvent` and `PulseEvent` (names, types,
defaults, and the numeric and length bounds), so the pydantic models stay the one declaration
of the format. They are not tracked by the cyclic garbage collector (``gc=False``): a batch of
a thousand of them adds nothing to its work.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

import annotated_types
import msgspec
from pydantic import BaseModel, Strict
from pydantic._internal._fields import PydanticMetadata
from pydantic.fields import FieldInfo

from shared.models import PulseEvent, RunEvent, ValidEnvelope

S = TypeVar("S", bound=msgspec.Struct)
#: What a JSON object field (``payload``, ``details``) decodes to: its bytes, or a dict.
Objects = type[msgspec.Raw] | type[dict[str, Any]]

_BOUNDS: Final[dict[type, str]] = {
    annotated_types.Ge: "ge",
    annotated_types.Le: "le",
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
}


def _meta(metadata: list[Any], strict: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        name = _BOUNDS.get(type(item))
        if name is not None:
            found[name] = getattr(item, name)
        elif isinstance(item, FieldInfo):
            found |= _meta(item.metadata, strict)
        elif strict:
            found |= _strict_meta(item)
    return found


def _strict_meta(item: Any) -> dict[str, Any]:
    """What a gate's struct makes of a constraint a trusted reader may skip; raises on others.

    A constraint the struct did not enforce would let it accept what the model refuses.
    """
    if isinstance(item, Strict) and item.strict:
        return {}  # msgspec is strict already: no bool for an int, no "7" for a number
    if isinstance(item, PydanticMetadata) and set(vars(item)) == {"pattern"}:
        # pydantic searches with Rust's regex, whose `$` is the end of the text; Python's `$`
        # also matches before a final newline. Anchored with \A and \Z, the struct accepts
        # no more than the model (the same, for a pattern within ^ and $).
        return {"pattern": rf"\A(?:{item.pattern})\Z"}  # type: ignore[attr-defined]
    raise TypeError(f"no msgspec form for the constraint {item!r}")


def plain_type(tp: Any, objects: Objects, strict: bool = False) -> Any:
    """A pydantic annotation as msgspec reads it: bounds kept, dict[str, Any] as `objects`.

    `strict`: every constraint kept (patterns too), and one msgspec cannot express refused.
    """
    origin = typing.get_origin(tp)
    if strict and tp is datetime:
        # msgspec rounds fractional seconds beyond the sixth digit where pydantic truncates,
        # and reads fewer forms: a strict struct takes its times as text (an override).
        raise TypeError("a strict struct has no datetime type: override the field")
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(tp)
        return _bounded(plain_type(inner, objects, strict), _meta(metadata, strict))
    if origin in (typing.Union, types.UnionType):
        args = tuple(plain_type(arg, objects, strict) for arg in typing.get_args(tp))
        if msgspec.Raw in args:  # raw bytes hold a null as well; msgspec allows no union
            return msgspec.Raw
        return typing.Union[args]  # noqa: UP007 - built from a tuple of members
    if origin is dict:
        return objects
    return tp


def _bounded(tp: Any, bounds: dict[str, Any]) -> Any:
    """`tp` with `bounds`; on an optional type, on its members other than None."""
    if not bounds:
        return tp
    if typing.get_origin(tp) is typing.Union:
        args = tuple(a if a is type(None) else _bounded(a, bounds) for a in typing.get_args(tp))
        return typing.Union[args]  # noqa: UP007 - built from a tuple of members
    return typing.Annotated[tp, msgspec.Meta(**bounds)]


def _field(info: FieldInfo, objects: Objects, strict: bool) -> tuple[Any, Any]:
    tp = _bounded(plain_type(info.annotation, objects, strict), _meta(info.metadata, strict))
    if info.is_required():
        return tp, msgspec.NODEFAULT
    if tp is msgspec.Raw:  # the default as the bytes the field would have held
        value = info.get_default(call_default_factory=True)
        return tp, msgspec.Raw(msgspec.json.encode(value))
    if info.default_factory is not None:
        factory = typing.cast(Callable[[], Any], info.default_factory)
        return tp, msgspec.field(default_factory=factory)
    return tp, info.default


def struct_of(
    model: type[BaseModel], objects: Objects, *, strict: bool = False, **overrides: Any
) -> type[msgspec.Struct]:
    """A msgspec struct with `model`'s fields (`overrides`: name -> type for some of them).

    `strict` (the validator's gate): every constraint of the model is enforced, or the struct
    is not built (`TypeError`); otherwise (readers of what the gate let through) the patterns
    are skipped.
    """
    fields: list[tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        tp, default = _field(info, objects, strict and name not in overrides)
        fields.append((name, overrides.get(name, tp), default))
    # Unknown fields are refused where the model forbids them (the events) and ignored where
    # it ignores them (the envelope).
    forbid = model.model_config.get("extra") == "forbid"
    return msgspec.defstruct(
        f"{'Checked' if strict else 'Trusted'}{model.__name__}",
        fields,
        kw_only=True,
        gc=False,
        forbid_unknown_fields=forbid,
    )


class Decoder(Generic[S]):
    """A JSON decoder to one derived struct; `decode` raises `DecodeError` on a wrong body."""

    def __init__(self, struct: type[S]) -> None:
        self.struct = struct
        self._decoder = msgspec.json.Decoder(struct)

    def decode(self, data: bytes | memoryview) -> S:
        """The struct of `data` (`DecodeError` if it is not JSON of that shape)."""
        return self._decoder.decode(data)


DecodeError = msgspec.DecodeError  # ValidationError is a subclass: one except clause


class EventDecoders:
    """The valid stream's envelope (its event left as bytes) and each dialect's event."""

    def __init__(self, objects: Objects) -> None:
        self.envelope: Decoder[Any] = Decoder(struct_of(ValidEnvelope, objects, event=msgspec.Raw))
        self.brewslm: Decoder[Any] = Decoder(struct_of(RunEvent, objects))
        self.pulse: Decoder[Any] = Decoder(struct_of(PulseEvent, objects))

    def event(self, dialect: str, raw: bytes | memoryview) -> Any:
        """The event of an envelope of `dialect` (`DecodeError` if it is not one)."""
        return (self.pulse if dialect == "pulse" else self.brewslm).decode(raw)
