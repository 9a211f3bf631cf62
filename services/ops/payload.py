"""Bytes in the ops views: a model's bytes fields as JSON-safe text, with flags saying how.

One rule, applied both to the fields of a view model (`view_fields`) and to the values put in
it (`view_values`): a ``bytes`` field is given as text when it is valid UTF-8, else as base64,
with ``<name>_base64`` (the flag) and ``<name>_size`` (its length) after it; a mapping of bytes
is given item by item the same way (empty when absent), with ``<name>_base64`` listing the
items given as base64. Every other field is taken over as the model declares it.
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
    flags = f"Names of the {name.replace('_', ' ')} given as base64."
    return {
        name: (dict[str, str], Field(default_factory=dict, description=_as_text(info))),
        f"{name}_base64": (list[str], Field(default_factory=list, description=flags)),
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
            encoded = {item: encode_bytes(raw) for item, raw in value.items()}
            out[name] = {item: text for item, (text, _) in encoded.items()}
            out[f"{name}_base64"] = [item for item, (_, is_b64) in encoded.items() if is_b64]
        else:
            out[name] = value
    return out
