"""Valid example events of both dialects, and small helpers to bend them for contract tests."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from shared.taxonomy import SEED_TAXONOMY, Taxonomy
from shared.validation import Accepted, Rejected, Result, validate_bytes

DROP: Final = object()
"""Pass as a field value to remove the field."""


def brewslm(**fields: Any) -> dict[str, Any]:
    """A valid BrewSLM RunEvent (a training OOM), with `fields` overriding or dropping keys."""
    doc: dict[str, Any] = {
        "project_id": 7,
        "run_id": "exp-42",
        "parent_run_id": "autopilot-9f",
        "stage": "training",
        "severity": "error",
        "reason_code": "training_oom",
        "summary": "GPU out of memory at step 1200",
        "payload": {"gpu": 0, "step": 1200},
        "ts": "2024-05-01T12:00:00Z",
    }
    return _apply(doc, fields)


def pulse(**fields: Any) -> dict[str, Any]:
    """A valid Pulse event (run.failed), with `fields` overriding or dropping keys."""
    doc: dict[str, Any] = {
        "run_id": "run-7f3a",
        "event_type": "run.failed",
        "severity": "error",
        "message": "executor raised",
        "details": {"stage": "fit", "error_type": "RuntimeError"},
        "created_at": "2024-05-01T12:00:00+02:00",
    }
    return _apply(doc, fields)


def _apply(doc: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    for name, value in fields.items():
        if value is DROP:
            doc.pop(name, None)
        else:
            doc[name] = value
    return doc


def check(doc: Any, taxonomy: Taxonomy = SEED_TAXONOMY, **kwargs: Any) -> Result:
    """Validate a document (or raw bytes) the way the validator sees it: as wire bytes."""
    # json, not orjson: it also encodes what orjson refuses (nesting past 254, huge ints)
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return validate_bytes(raw, taxonomy, **kwargs)


def errors_of(doc: Any, taxonomy: Taxonomy = SEED_TAXONOMY, **kwargs: Any) -> list[str]:
    """The error codes of a document that must be rejected."""
    result = check(doc, taxonomy, **kwargs)
    assert isinstance(result, Rejected), f"expected a rejection, got {result}"
    return result.errors


def accepted(doc: Any, taxonomy: Taxonomy = SEED_TAXONOMY) -> Accepted:
    """The result of a document that must be accepted."""
    result = check(doc, taxonomy)
    assert isinstance(result, Accepted), f"expected acceptance, got {result}"
    return result


_VALUE = r".{0,64}"
#: Every error-code family the contract documents, as one regex (values shown by `show`).
ERROR_CODE = re.compile(
    r"payload_too_large|malformed_json|unknown_dialect|missing_reason_code"
    rf"|(?:invalid_stage|invalid_severity|invalid_reason_code|invalid_event_type):{_VALUE}"
    r"|(?:reason_code_stage_mismatch|reason_code_severity_mismatch):[a-z][a-z0-9_]*"
    r"|severity_mismatch:(?:run|stage|schedule|lease)(?:\.[a-z][a-z0-9_]*)+"
    rf"|schema_violation:(?:\$|{_VALUE})",
    re.DOTALL,
)


def is_documented(code: str) -> bool:
    """True when `code` belongs to a documented family and is one printable line."""
    return ERROR_CODE.fullmatch(code) is not None and code.isprintable()
