"""Contract: each documented error code is produced by a concrete case; valid events pass."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.models import PulseEvent, RunEvent
from shared.settings import Settings
from shared.taxonomy import SEED_TAXONOMY, build_taxonomy
from shared.validation import (
    DEFAULT_MAX_BYTES,
    MAX_NESTING,
    Accepted,
    Rejected,
    validate_bytes,
    validate_document,
)
from tests.unit.contract import expected
from tests.unit.contract.events import (
    DROP,
    accepted,
    brewslm,
    check,
    errors_of,
    is_documented,
    pulse,
)

# --- one concrete case per error code -----------------------------------------------------

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown stage", brewslm(stage="gold_set"), "invalid_stage:gold_set"),
    ("stage of wrong case", brewslm(stage="Training"), "invalid_stage:Training"),
    ("stage missing", brewslm(stage=DROP), "invalid_stage:null"),
    ("stage not a string", brewslm(stage=3), "invalid_stage:3"),
    ("unknown severity", brewslm(severity="fatal"), "invalid_severity:fatal"),
    ("pulse severity in brewslm", brewslm(severity="warn"), "invalid_severity:warn"),
    ("brewslm severity in pulse", pulse(severity="warning"), "invalid_severity:warning"),
    ("error without code", brewslm(reason_code=DROP), "missing_reason_code"),
    (
        "critical with null code",
        brewslm(severity="critical", reason_code=None),
        "missing_reason_code",
    ),
    (
        "unknown code",
        brewslm(reason_code="training_nan_loss"),
        "invalid_reason_code:training_nan_loss",
    ),
    (
        "code not a string",
        brewslm(reason_code=["training_oom"]),
        'invalid_reason_code:["training_oom"]',
    ),
    (
        "code of another stage",
        brewslm(reason_code="eval_runtime_error"),
        "reason_code_stage_mismatch:eval_runtime_error",
    ),
    (
        "INFO-only code on an error",
        brewslm(stage="ingestion", reason_code="dataset_import_run"),
        "reason_code_severity_mismatch:dataset_import_run",
    ),
    ("unknown pulse type", pulse(event_type="run.exploded"), "invalid_event_type:run.exploded"),
    ("pulse type missing", pulse(event_type=DROP, dialect="pulse"), "invalid_event_type:null"),
    ("pulse severity off catalog", pulse(severity="warn"), "severity_mismatch:run.failed"),
    ("missing project", brewslm(project_id=DROP), "schema_violation:project_id"),
    ("project as a string", brewslm(project_id="7"), "schema_violation:project_id"),
    ("negative project", brewslm(project_id=-1), "schema_violation:project_id"),
    ("missing run id", pulse(run_id=DROP), "schema_violation:run_id"),
    ("empty run id", brewslm(run_id=""), "schema_violation:run_id"),
    ("payload not an object", brewslm(payload=[1, 2]), "schema_violation:payload"),
    ("details not an object", pulse(details="x"), "schema_violation:details"),
    ("unknown field", brewslm(colour="red"), "schema_violation:colour"),
    ("pulse with a top-level stage", pulse(stage="fit"), "schema_violation:stage"),
    ("pulse with a reason code", pulse(reason_code="training_oom"), "schema_violation:reason_code"),
    ("created_at missing", pulse(created_at=DROP), "schema_violation:created_at"),
    ("ts not a time", brewslm(ts="yesterday"), "schema_violation:ts"),
    ("ts before 1970", brewslm(ts="1969-12-31T23:59:59Z"), "schema_violation:ts"),
    ("ts in 2100", brewslm(ts="2100-01-01T00:00:00Z"), "schema_violation:ts"),
    (
        "created_at after 2100",
        pulse(created_at="2150-06-01T00:00:00Z"),
        "schema_violation:created_at",
    ),
    ("event id with spaces", brewslm(event_id="has spaces"), "schema_violation:event_id"),
    ("actor empty", brewslm(actor=""), "schema_violation:actor"),
    ("summary too long", brewslm(summary="x" * 5000), "schema_violation:summary"),
    ("not an object", [brewslm()], "schema_violation:$"),  # type: ignore[list-item]
    ("a bare string", "training_oom", "schema_violation:$"),  # type: ignore[list-item]
    ("neither dialect", {"hello": "world"}, "unknown_dialect"),
    ("declared unknown dialect", brewslm(dialect="kafka"), "unknown_dialect"),
    ("dialect not a string", pulse(dialect=["pulse"]), "unknown_dialect"),
]


@pytest.mark.parametrize(("doc", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_code_is_produced_by_a_concrete_case(doc: dict[str, Any], code: str) -> None:
    errors = errors_of(doc)
    assert code in errors
    assert all(is_documented(e) for e in errors), errors


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"stage": "training",}',
        b"not json at all",
        b"\xff\xfe{}",
        '{"stage": "training", "summary": "caf\u00e9"}'.encode("latin-1"),
        b'{"summary": "\xed\xa0\x80"}',  # an encoded lone surrogate is not UTF-8
        b'{"stage": NaN}',
        b"[" * 2000 + b"]" * 2000,
    ],
    ids=[
        "empty",
        "truncated",
        "trailing comma",
        "text",
        "utf16 bom",
        "latin-1",
        "surrogate",
        "NaN",
        "depth 2000",
    ],
)
def test_malformed_json_including_non_utf8(raw: bytes) -> None:
    result = validate_bytes(raw, SEED_TAXONOMY)
    assert isinstance(result, Rejected)
    assert result.errors == ["malformed_json"]
    assert result.message


def _padded(size: int) -> bytes:
    """A valid event body of exactly `size` bytes."""
    body = orjson.dumps(brewslm(payload={"pad": ""}))
    return body.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(body)) + b'"')


def test_payload_too_large_has_a_default_limit_of_64_kib() -> None:
    assert DEFAULT_MAX_BYTES == 64 * 1024
    assert len(_padded(DEFAULT_MAX_BYTES)) == DEFAULT_MAX_BYTES
    assert isinstance(validate_bytes(_padded(DEFAULT_MAX_BYTES), SEED_TAXONOMY), Accepted)
    over = validate_bytes(_padded(DEFAULT_MAX_BYTES + 1), SEED_TAXONOMY)
    assert isinstance(over, Rejected)
    assert over.errors == ["payload_too_large"]


def test_payload_too_large_limit_is_configurable() -> None:
    body = _padded(2000)
    assert isinstance(validate_bytes(body, SEED_TAXONOMY, max_bytes=2000), Accepted)
    assert validate_bytes(body, SEED_TAXONOMY, max_bytes=1999) == Rejected(
        ["payload_too_large"], ["2000 bytes > limit 1999"]
    )
    assert Settings(_env_file=None).max_event_bytes == DEFAULT_MAX_BYTES


def test_size_is_checked_before_anything_else() -> None:
    assert errors_of(b"\xff" * 100, max_bytes=10) == ["payload_too_large"]


def test_several_errors_are_reported_together_in_a_stable_order() -> None:
    doc = {
        "stage": "gold_set",
        "severity": "fatal",
        "reason_code": "x",
        "project_id": "7",
        "colour": "red",
    }
    errors = errors_of(doc)
    assert errors == errors_of(doc)
    assert errors[:3] == [
        "invalid_stage:gold_set",
        "invalid_severity:fatal",
        "invalid_reason_code:x",
    ]
    for code in (
        "schema_violation:project_id",
        "schema_violation:run_id",
        "schema_violation:ts",
        "schema_violation:colour",
    ):
        assert code in errors
    assert len(errors) == len(set(errors))
    result = check(doc)
    assert isinstance(result, Rejected)
    assert "gold_set" in result.message and "fatal" in result.message


def test_pulse_reports_type_and_schema_errors_together() -> None:
    errors = errors_of(pulse(event_type="run.exploded", severity="fatal", run_id=DROP))
    assert errors == [
        "invalid_event_type:run.exploded",
        "invalid_severity:fatal",
        "schema_violation:run_id",
    ]


def test_values_in_error_codes_are_short_and_printable() -> None:
    (code,) = [
        e
        for e in errors_of(brewslm(stage="bad\nstage" + "x" * 500))
        if e.startswith("invalid_stage")
    ]
    assert code.startswith("invalid_stage:bad?stage")
    assert len(code.partition(":")[2]) == 64
    assert code.isprintable()


# --- cross-stage policy -------------------------------------------------------------------


def test_cross_stage_code_is_rejected_by_default() -> None:
    assert SEED_TAXONOMY.cross_stage_policy == "reject"
    doc = brewslm(stage="eval", reason_code="training_oom")
    assert errors_of(doc) == ["reason_code_stage_mismatch:training_oom"]


def test_cross_stage_code_is_accepted_when_the_policy_says_so() -> None:
    accepting = build_taxonomy(cross_stage_policy="accept")
    assert accepted(brewslm(stage="eval", reason_code="training_oom"), accepting)
    # the policy only relaxes the stage: unknown and INFO-only misuse stay errors
    assert errors_of(brewslm(reason_code="nope"), accepting) == ["invalid_reason_code:nope"]
    bad = brewslm(stage="eval", reason_code="dataset_import_run")
    assert errors_of(bad, accepting) == ["reason_code_severity_mismatch:dataset_import_run"]


def test_the_policy_is_a_setting() -> None:
    base: dict[str, Any] = {"_env_file": None}
    assert Settings(**base).taxonomy.cross_stage_policy == "reject"
    relaxed = Settings(cross_stage_reason_codes="accept", **base)
    assert accepted(brewslm(stage="eval", reason_code="training_oom"), relaxed.taxonomy)


@pytest.mark.parametrize("stage", expected.SEED_STAGES)
@pytest.mark.parametrize("code", [c for c, _ in expected.SEED_REASON_CODES["system"]])
def test_system_codes_are_accepted_in_every_stage(stage: str, code: str) -> None:
    assert accepted(brewslm(stage=stage, reason_code=code, severity="critical"))


def test_a_stage_code_is_not_accepted_in_the_system_stage() -> None:
    doc = brewslm(stage="system", reason_code="training_oom")
    assert errors_of(doc) == ["reason_code_stage_mismatch:training_oom"]


# --- what is accepted ---------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "code", "info_only"), expected.SEED_CODE_ROWS)
def test_every_reason_code_is_accepted_in_its_own_stage(
    stage: str, code: str, info_only: bool
) -> None:
    severities = ["info", "warning"] if info_only else ["info", "warning", "error", "critical"]
    for severity in severities:
        event = accepted(brewslm(stage=stage, severity=severity, reason_code=code)).event
        assert isinstance(event, RunEvent)
        assert (event.stage, event.severity, event.reason_code) == (stage, severity, code)


@pytest.mark.parametrize("stage", expected.SEED_STAGES)
@pytest.mark.parametrize("severity", ["info", "warning"])
def test_every_stage_accepts_info_and_warning_without_a_code(stage: str, severity: str) -> None:
    assert accepted(brewslm(stage=stage, severity=severity, reason_code=DROP))


@pytest.mark.parametrize(("event_type", "severity"), expected.SEED_PULSE_TYPES.items())
def test_every_pulse_type_is_accepted_with_its_own_severity_only(
    event_type: str, severity: str
) -> None:
    event = accepted(pulse(event_type=event_type, severity=severity)).event
    assert isinstance(event, PulseEvent)
    assert event.event_type == event_type
    for other in {"info", "warn", "error"} - {severity}:
        assert errors_of(pulse(event_type=event_type, severity=other)) == [
            f"severity_mismatch:{event_type}"
        ]


def test_an_accepted_event_is_normalized() -> None:
    event = accepted(brewslm(ts="2024-05-01T14:00:00+02:00", actor=DROP)).event
    assert isinstance(event, RunEvent)
    assert event.ts == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert event.actor == "system"
    assert event.dialect == "brewslm"
    naive = accepted(pulse(created_at="2024-05-01T12:00:00")).event
    assert isinstance(naive, PulseEvent)
    assert naive.created_at.tzinfo == UTC


def test_the_edges_of_the_time_window_are_accepted() -> None:
    assert accepted(brewslm(ts="1970-01-01T00:00:00Z"))
    assert accepted(brewslm(ts="2099-12-31T23:59:59.999999Z"))


def test_the_dialect_is_detected_without_the_dialect_field() -> None:
    assert isinstance(accepted(pulse()).event, PulseEvent)
    assert isinstance(accepted(brewslm()).event, RunEvent)
    assert isinstance(accepted(pulse(dialect="pulse", project_id=3)).event, PulseEvent)


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def test_nesting_up_to_the_limit_is_accepted_and_beyond_it_rejected() -> None:
    # the event object is level 1, so its payload may hold MAX_NESTING - 1 levels
    assert accepted(brewslm(payload=_nested(MAX_NESTING - 1)))
    assert errors_of(brewslm(payload=_nested(MAX_NESTING))) == ["schema_violation:payload"]
    deep_list: Any = [[[]]]
    for _ in range(300):
        deep_list = [deep_list]
    assert errors_of(pulse(details={"x": deep_list})) == ["schema_violation:details"]


def test_validate_document_checks_python_documents_the_same_way() -> None:
    assert isinstance(validate_document(brewslm(), SEED_TAXONOMY), Accepted)
    result = validate_document(brewslm(payload=_nested(1000)), SEED_TAXONOMY)
    assert isinstance(result, Rejected)
    assert result.errors == ["schema_violation:payload"]
    big = validate_document(brewslm(stage=2**80, severity={"a": [1]}), SEED_TAXONOMY)
    assert isinstance(big, Rejected)
    assert big.errors[:2] == ["invalid_stage:<int>", 'invalid_severity:{"a":[1]}']


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_a_document_holding_a_number_json_cannot_is_a_schema_violation(number: float) -> None:
    # Given a Python document (a producer's) with NaN or an infinity deep in its payload,
    # which JSON would write as null: the stored event would not be the one validated
    doc = brewslm(payload={"loss": [1.0, {"last": number}]})
    # When it is validated, then its field is named, as for any other schema violation
    result = validate_document(doc, SEED_TAXONOMY)
    assert result == Rejected(
        ["schema_violation:payload"], ["payload: NaN or an infinite number (JSON has neither)"]
    )
    # And the same with a finite number is accepted
    assert isinstance(validate_document(brewslm(payload={"loss": 1e308}), SEED_TAXONOMY), Accepted)
