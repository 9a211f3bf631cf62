"""The one validation function of the contract, used by the validator and by producers.

`validate_bytes` / `validate_document` never raise: any input, however malformed, yields either
`Accepted(event)` or `Rejected(errors)` with stable error codes:

| code | when |
|---|---|
| ``payload_too_large`` | the entry is larger than the configured limit (64 KiB by default) |
| ``malformed_json`` | not UTF-8 JSON (or a broken FastStream envelope) |
| ``unknown_dialect`` | neither a BrewSLM RunEvent nor a Pulse event |
| ``invalid_stage:<v>`` | stage not one of the nine |
| ``invalid_severity:<v>`` | severity not in the dialect's set |
| ``missing_reason_code`` | error/critical BrewSLM event without a reason code |
| ``invalid_reason_code:<v>`` | reason code not in the taxonomy |
| ``reason_code_stage_mismatch:<code>`` | code of another stage (see cross-stage policy) |
| ``reason_code_severity_mismatch:<code>`` | an INFO-only code on an error/critical event |
| ``invalid_event_type:<v>`` | Pulse event type not in the catalog |
| ``severity_mismatch:<event_type>`` | Pulse severity differs from the catalog's |
| ``schema_violation:<field>`` | a field is missing, mistyped, out of range, unknown, too deep |
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from shared.models import Event, PulseEvent, RunEvent
from shared.taxonomy import (
    CATCH_ALL_STAGE,
    CODE_REQUIRED_SEVERITIES,
    PULSE_SEVERITIES,
    SEVERITIES,
    STAGES,
    Taxonomy,
)

DEFAULT_MAX_BYTES = 64 * 1024
#: Deepest JSON nesting accepted in an event (the object itself is level 1). Deeper documents
#: cannot be re-encoded downstream (orjson stops at 254 levels, pydantic's dump earlier), so an
#: accepted event could never be written to the valid stream.
MAX_NESTING = 100
_SHOW_MAX = 64
#: Fields whose schema errors the dialect's own checks already report with a sharper code.
_CHECKED_BY_TAXONOMY = {
    "brewslm": frozenset({"stage", "severity", "reason_code"}),
    "pulse": frozenset({"event_type", "severity"}),
}


@dataclass(slots=True)  # not frozen: one per event, and a frozen init costs four times as much
class Accepted:
    """The event passed every check."""

    event: Event
    ok: bool = True


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event failed; `errors` holds every stable error code, in a stable order."""

    errors: list[str]
    details: list[str] = field(default_factory=list)
    ok: bool = False

    @property
    def message(self) -> str:
        """A human explanation of every error."""
        return "; ".join(self.details or self.errors)


Result = Accepted | Rejected


def show(value: object) -> str:
    """A value as it appears inside an error code: short, printable, one line."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=repr).decode()
        except TypeError:  # ints beyond 64 bits, nesting beyond orjson's limit, odd keys
            text = f"<{type(value).__name__}>"
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 1] + "…"


def validate_bytes(raw: bytes, taxonomy: Taxonomy, max_bytes: int = DEFAULT_MAX_BYTES) -> Result:
    """Validate one wire-format event body (UTF-8 JSON)."""
    if len(raw) > max_bytes:
        return Rejected(["payload_too_large"], [f"{len(raw)} bytes > limit {max_bytes}"])
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected(["malformed_json"], [f"not UTF-8 JSON: {exc}"])
    # Counting brackets is cheap and bounds the depth, so most events skip the walk.
    deep = raw.count(b"[") + raw.count(b"{") > MAX_NESTING
    return _validate_safely(doc, taxonomy, deep)


def validate_document(doc: Any, taxonomy: Taxonomy) -> Result:
    """Validate one decoded JSON document.

    A Python document may hold what JSON cannot: a NaN or infinite float anywhere in it is a
    schema violation of its field (written as JSON it would become ``null``, so the event the
    bus stores would differ from the one validated). Bytes cannot hold one: orjson refuses
    ``NaN``, ``Infinity`` and numbers beyond a double.
    """
    result = _validate_safely(doc, taxonomy, check_nesting=True)
    if isinstance(result, Accepted) and isinstance(doc, dict):
        return _finite_or_rejected(doc, result)
    return result


def _validate_safely(doc: Any, taxonomy: Taxonomy, check_nesting: bool) -> Result:
    try:
        return _validate(doc, taxonomy, check_nesting)
    except RecursionError:
        return Rejected(["schema_violation:$"], ["document nested too deeply"])


def detect_dialect(doc: dict[str, Any]) -> str | None:
    """brewslm, pulse, or None when the document is neither."""
    declared = doc.get("dialect")
    if declared is not None:
        return declared if declared in ("brewslm", "pulse") else None
    if "event_type" in doc:
        return "pulse"
    if "stage" in doc or "reason_code" in doc or "project_id" in doc:
        return "brewslm"
    return None


def _validate(doc: Any, taxonomy: Taxonomy, check_nesting: bool) -> Result:
    if not isinstance(doc, dict):
        return Rejected(["schema_violation:$"], ["the event must be a JSON object"])
    dialect = detect_dialect(doc)
    if dialect is None:
        return Rejected(["unknown_dialect"], ["neither a BrewSLM RunEvent nor a Pulse event"])
    if dialect == "brewslm":
        errors, details = brewslm_checks(
            doc.get("stage"), doc.get("severity"), doc.get("reason_code"), taxonomy
        )
    else:
        errors, details = pulse_checks(doc.get("event_type"), doc.get("severity"), taxonomy)
    if check_nesting:
        _nesting_errors(doc, errors, details)
    model: type[RunEvent] | type[PulseEvent] = RunEvent if dialect == "brewslm" else PulseEvent
    try:
        # What model_validate does, without its Python frame: this runs once per event.
        event = model.__pydantic_validator__.validate_python(doc)
    except ValidationError as exc:
        _schema_errors(exc, errors, details, _CHECKED_BY_TAXONOMY[dialect])
    else:
        if not errors:
            return Accepted(event)
    return Rejected(errors, details)


def _finite_or_rejected(doc: dict[Any, Any], accepted: Accepted) -> Result:
    names = [show(str(name)) for name, value in doc.items() if _holds_non_finite(value)]
    if not names:
        return accepted
    return Rejected(
        [f"schema_violation:{name}" for name in names],
        [f"{name}: NaN or an infinite number (JSON has neither)" for name in names],
    )


def _holds_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _nesting_errors(doc: dict[Any, Any], errors: list[str], details: list[str]) -> None:
    for name, value in doc.items():
        if _deeper_than(value, MAX_NESTING - 1):
            errors.append(f"schema_violation:{show(str(name))}")
            details.append(f"{show(str(name))}: nested deeper than {MAX_NESTING} levels")


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _schema_errors(
    exc: ValidationError, errors: list[str], details: list[str], checked: frozenset[str]
) -> None:
    # A field already reported (too deeply nested) is not reported twice.
    seen = {e.partition(":")[2] for e in errors if e.startswith("schema_violation:")}
    for err in exc.errors(include_url=False, include_input=False):
        loc = err["loc"]
        name = show(str(loc[0])) if loc else "$"
        if name in checked or name in seen:
            continue
        seen.add(name)
        errors.append(f"schema_violation:{name}")
        details.append(f"{'.'.join(map(str, loc)) or '$'}: {err['msg']}")


def brewslm_checks(
    stage: Any, severity: Any, code: Any, tax: Taxonomy
) -> tuple[list[str], list[str]]:
    """The taxonomy's checks of a BrewSLM event's values (of any JSON type): codes, details."""
    errors: list[str] = []
    details: list[str] = []
    if stage not in STAGES:
        errors.append(f"invalid_stage:{show(stage)}")
        details.append(f"stage {show(stage)!r} is not one of {', '.join(STAGES)}")
    if severity not in SEVERITIES:
        errors.append(f"invalid_severity:{show(severity)}")
        details.append(f"severity {show(severity)!r} is not one of {', '.join(SEVERITIES)}")
    # isinstance first: a JSON list or object as severity is unhashable.
    needs_code = isinstance(severity, str) and severity in CODE_REQUIRED_SEVERITIES
    if code is None:
        if needs_code:
            errors.append("missing_reason_code")
            details.append(f"a {severity} event must carry a reason_code")
        return errors, details
    known = tax.reason_codes.get(code) if isinstance(code, str) else None
    if known is None:
        errors.append(f"invalid_reason_code:{show(code)}")
        details.append(f"reason_code {show(code)!r} is not in taxonomy {tax.version}")
        return errors, details
    crosses = known.stage not in (stage, CATCH_ALL_STAGE) and stage in STAGES
    if crosses and tax.cross_stage_policy == "reject":
        errors.append(f"reason_code_stage_mismatch:{code}")
        details.append(f"reason_code {code} belongs to stage {known.stage}, not {stage}")
    if known.info_only and needs_code:
        errors.append(f"reason_code_severity_mismatch:{code}")
        details.append(f"reason_code {code} is INFO-only and cannot mark a {severity} event")
    return errors, details


def pulse_checks(event_type: Any, severity: Any, tax: Taxonomy) -> tuple[list[str], list[str]]:
    """The catalog's checks of a Pulse event's values (of any JSON type): codes, details."""
    errors: list[str] = []
    details: list[str] = []
    expected = tax.pulse_types.get(event_type) if isinstance(event_type, str) else None
    if expected is None:
        errors.append(f"invalid_event_type:{show(event_type)}")
        details.append(f"event_type {show(event_type)!r} is not in the Pulse catalog")
    if severity not in PULSE_SEVERITIES:
        errors.append(f"invalid_severity:{show(severity)}")
        details.append(f"severity {show(severity)!r} is not one of {', '.join(PULSE_SEVERITIES)}")
    elif expected is not None and severity != expected:
        errors.append(f"severity_mismatch:{event_type}")
        details.append(f"{event_type} is {expected} in the catalog, got {severity}")
    return errors, details
