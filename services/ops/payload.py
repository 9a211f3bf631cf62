r"""Bytes in the ops views: a model's bytes fields as JSON-safe text, with flags saying how.

One rule, applied both to the fields of a view model (`view_fields`) and to the values put in
it (`view_values`): a ``bytes`` field is given as text when it is valid UTF-8, else as base64,
with ``<name>_base64`` (the flag) and ``<name>_size`` (its length) after it; a mapping of bytes
is given item by item the same way (empty when absent), with ``<name>_base64`` listing the
items given as base64. Every other field is taken over as the model declares it.

An item's name is bytes too (a source entry's field name, kept as text by surrogateescape):
it is given as it is when it is UTF-8 without a backslash, else escaped (`encode_name`) and
listed in ``<name>_escaped``: each byte that is not UTF-8 as ``\xNN`` (the dashboard's
marks) and each backslash doubled. So no name is lost, and no escaped name can be taken for
another (every escaped one holds a backslash, no name given as it is does).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from copy import copy
from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

_BYTES_MAP = dict[str, bytes]


def encode_bytes(value: bytes) -> tuple[str, bool]:
    """Bytes as JSON-safe text: themselves when UTF-8, else base64 (second item True)."""
    try:
        return value.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), True


def encode_name(name: str) -> tuple[str, bool]:
    r"""A name (its bytes that are not UTF-8 kept by surrogateescape) as JSON-safe text: itself
    when UTF-8 without a backslash, else escaped (second item True): ``\\`` for a backslash,
    ``\xNN`` for each byte that is not UTF-8."""
    raw = name.encode("utf-8", "surrogateescape")
    if b"\\" not in raw and _is_utf8(raw):
        return name, False
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace"), True


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _as_text(info: FieldInfo) -> str:
    return (info.description or "").rstrip(".") + " (text, or base64)."


def _bytes_view(name: str, info: FieldInfo) -> dict[str, Any]:
    spoken = name.replace("_", " ")
    return {
        name: (str, Field(description=_as_text(info))),
        f"{name}_base64": (bool, Field(description=f"True when `{name}` is base64 (not UTF-8).")),
        f"{name}_size": (int, Field(description=f"Size of the {spoken} payload in bytes.")),
    }


def _bytes_map_view(name: str, info: FieldInfo) -> dict[str, Any]:
    spoken = name.replace("_", " ")
    flags = f"Names of the {spoken} given as base64."
    escaped = (
        f"Names of the {spoken} given escaped: a name that is not UTF-8, or holds a backslash, "
        "is written with \\xNN for each byte that is not UTF-8 and \\\\ for a backslash; "
        "the others are the names as they are."
    )
    return {
        name: (dict[str, str], Field(default_factory=dict, description=_as_text(info))),
        f"{name}_base64": (list[str], Field(default_factory=list, description=flags)),
        f"{name}_escaped": (list[str], Field(default_factory=list, description=escaped)),
    }


def view_fields(model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `model`'s JSON-safe view, in its order, as `pydantic.create_model` takes."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.annotation is bytes:
            out |= _bytes_view(name, info)
        elif info.annotation == _BYTES_MAP:
            out |= _bytes_map_view(name, info)
        else:
            out[name] = (info.annotation, copy(info))
    return out


def view_values(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` of `model`'s fields as its view takes them (bytes fields encoded)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        annotation = model.model_fields[name].annotation
        if annotation is bytes:
            text, is_b64 = encode_bytes(value)
            out |= {name: text, f"{name}_base64": is_b64, f"{name}_size": len(value)}
        elif annotation == _BYTES_MAP:
            out |= _bytes_map_values(name, value)
        else:
            out[name] = value
    return out


def _bytes_map_values(name: str, value: Mapping[str, bytes]) -> dict[str, Any]:
    """A mapping of bytes as its view gives it: names and values encoded, with their flags."""
    items = [(encode_name(item), encode_bytes(raw)) for item, raw in value.items()]
    return {
        name: {item: text for (item, _), (text, _) in items},
        f"{name}_base64": [item for (item, _), (_, is_b64) in items if is_b64],
        f"{name}_escaped": [item for (item, escaped), _ in items if escaped],
    }
