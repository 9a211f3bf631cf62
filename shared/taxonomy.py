"""The event taxonomy: the runtime source of truth for both dialects on the bus.

BrewSLM (seed 000): nine stages, four severities, reason codes grouped by stage; a few codes
are INFO-only (they describe ordinary progress, never a failure). Pulse (seed 004): a catalog of
dot-namespaced event types, each with exactly one severity.

The taxonomy can grow by configuration (an extra-codes JSON file, see `load_taxonomy`), which is
how ops accept a new code before the next release and then re-drive its dead letters.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

STAGES: Final[tuple[str, ...]] = (
    "ingestion",
    "cleaning",
    "adapter",
    "training",
    "eval",
    "export",
    "deployment",
    "autopilot",
    "system",
)
SEVERITIES: Final[tuple[str, ...]] = ("info", "warning", "error", "critical")
#: Severities that must carry a reason code.
CODE_REQUIRED_SEVERITIES: Final[frozenset[str]] = frozenset({"error", "critical"})
PULSE_SEVERITIES: Final[tuple[str, ...]] = ("info", "warn", "error")
#: Stage whose codes are accepted in every stage (the seed calls it the catch-all).
CATCH_ALL_STAGE: Final[str] = "system"

CrossStagePolicy = Literal["reject", "accept"]

#: Reason codes are snake_case; Pulse types are lowercase dot-separated snake_case segments
#: under one of the seed's subject namespaces. Extensions must follow the same conventions.
_SNAKE: Final = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
REASON_CODE_PATTERN: Final = re.compile(_SNAKE)
PULSE_NAMESPACES: Final[tuple[str, ...]] = ("run", "stage", "schedule", "lease")
PULSE_TYPE_PATTERN: Final = re.compile(rf"(?:{'|'.join(PULSE_NAMESPACES)})(?:\.{_SNAKE})+")


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """One reason code of the BrewSLM taxonomy."""

    code: str
    stage: str
    description: str
    info_only: bool = False


def _codes(stage: str, *rows: tuple[str, str] | tuple[str, str, bool]) -> list[ReasonCode]:
    return [ReasonCode(r[0], stage, r[1], bool(r[2]) if len(r) > 2 else False) for r in rows]


_SEED_REASON_CODES: Final[list[ReasonCode]] = [
    *_codes(
        "ingestion",
        ("ingest_unsupported_format", "file extension not in the supported set"),
        ("ingest_io_error", "disk write/read failure during ingest"),
        ("ingest_validation_failed", "row failed schema or content validation"),
        ("dataset_import_run", "generic import pipeline wrote rows", True),
        ("dataset_import_failed", "import pipeline raised before any rows written"),
        ("annotation_job_created", "label job created", True),
        ("annotation_label_submitted", "reviewer submitted a single label", True),
        ("annotation_rows_promoted", "labeled rows materialized to a downstream dataset", True),
        ("distillation_teacher_capture", "teacher top-k logprobs captured", True),
    ),
    *_codes(
        "cleaning",
        ("cleaning_outlier_threshold_exceeded", "outlier removal removed more rows than the cap"),
        ("cleaning_pii_block", "PII / safety scan blocked the dataset from advancing"),
    ),
    *_codes(
        "adapter",
        ("adapter_schema_mismatch", "declared input/output schema could not be matched"),
        ("adapter_field_resolution_failed", "adapter could not resolve a field mapping"),
    ),
    *_codes(
        "training",
        ("training_dispatch_error", "failure dispatching the run to the runtime backend"),
        ("training_runtime_error", "generic runtime failure inside the training loop"),
        ("training_oom", "GPU out-of-memory during training"),
        ("training_timeout", "run exceeded its wallclock budget"),
        ("training_cancelled", "operator (or upstream signal) cancelled the run"),
    ),
    *_codes(
        "eval",
        ("eval_runtime_error", "generic failure inside the evaluation runner"),
        ("eval_dataset_missing", "eval pack referenced a dataset that no longer exists"),
        ("eval_judge_unavailable", "LLM-as-judge call failed (provider down / quota / config)"),
    ),
    *_codes(
        "export",
        ("export_run_failed", "generic export failure"),
        ("export_artifact_missing", "required model / tokenizer artifact missing at export"),
        ("export_quantization_failed", "quantization exited non-zero or gave an invalid artifact"),
    ),
    *_codes(
        "deployment",
        ("deployment_smoke_failed", "post-deploy smoke check failed against the live endpoint"),
        ("deployment_promote_blocked", "promote refused (not promotable / readiness gate)"),
        ("deployment_rollback_no_predecessor", "rollback refused: no superseded predecessor"),
        ("deployment_drift_detected", "drift check found pass-rate delta beyond tolerance"),
    ),
    *_codes(
        "autopilot",
        ("autopilot_repair_blocked", "autopilot refused a repair (strict mode or unsafe action)"),
        ("autopilot_strict_mode_refused", "strict mode rejected an auto-repair"),
        ("autopilot_no_safe_plan", "autopilot could not construct a safe plan"),
    ),
    *_codes(
        "system",
        ("system_db_error", "unexpected database error from a service-internal write path"),
        ("system_config_invalid", "required configuration value missing or malformed"),
        ("extension_load_failed", "plugin module import / register hook raised"),
        ("extension_contract_invalid", "plugin module failed one or more contract checks"),
    ),
]

_SEED_PULSE_TYPES: Final[dict[str, str]] = {
    # run lifecycle
    "run.completed": "info",
    "run.failed": "error",
    "run.failed.settled": "error",
    "run.suspended": "info",
    "run.cancelled": "info",
    "run.shutdown": "info",
    "run.stuck": "error",
    "run.graph_state_persist_failed": "error",
    "run.graph_state_stale_write": "warn",
    # stage
    "stage.completed": "info",
    "stage.failed": "error",
    "stage.skipped": "warn",
    "stage.rewritten": "info",
    "stage.rewrite_degraded": "warn",
    "stage.worker_exception_reified": "error",
    "stage.worker_exception_unattributed": "error",
    "stage.cancel_before_retry_persist_failed": "warn",
    # scheduler
    "schedule.advanced": "info",
    "schedule.restored": "warn",
    "lease.lost": "error",
}


@dataclass(frozen=True)
class Taxonomy:
    """An immutable view of the whole taxonomy, with its content-hash version."""

    reason_codes: MappingProxyType[str, ReasonCode]
    pulse_types: MappingProxyType[str, str]
    cross_stage_policy: CrossStagePolicy = "reject"
    version: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", _content_hash(self))

    def codes_by_stage(self) -> dict[str, list[ReasonCode]]:
        """Reason codes grouped by stage, in stage order."""
        grouped: dict[str, list[ReasonCode]] = {s: [] for s in STAGES}
        for rc in self.reason_codes.values():
            grouped[rc.stage].append(rc)
        return grouped

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready document of the whole taxonomy (what `runbus taxonomy --json` prints)."""
        return {
            "version": self.version,
            "stages": list(STAGES),
            "severities": list(SEVERITIES),
            "cross_stage_policy": self.cross_stage_policy,
            "reason_codes": {
                stage: [
                    {"code": c.code, "description": c.description, "info_only": c.info_only}
                    for c in codes
                ]
                for stage, codes in self.codes_by_stage().items()
            },
            "pulse_severities": list(PULSE_SEVERITIES),
            "pulse_event_types": dict(self.pulse_types),
        }


def _content_hash(tax: Taxonomy) -> str:
    doc = {
        "codes": sorted((c.code, c.stage, c.info_only) for c in tax.reason_codes.values()),
        "pulse": sorted(tax.pulse_types.items()),
        "policy": tax.cross_stage_policy,
    }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return f"tx-{digest[:12]}"


class TaxonomyError(ValueError):
    """Raised when the taxonomy (seed plus extensions) is inconsistent."""


def build_taxonomy(
    extra_codes: list[ReasonCode] | None = None,
    extra_pulse_types: dict[str, str] | None = None,
    cross_stage_policy: CrossStagePolicy = "reject",
) -> Taxonomy:
    """Build the taxonomy from the seed plus optional extensions; rejects duplicates."""
    codes: dict[str, ReasonCode] = {}
    for rc in [*_SEED_REASON_CODES, *(extra_codes or [])]:
        if rc.code in codes:
            raise TaxonomyError(f"duplicate reason code: {rc.code}")
        if rc.stage not in STAGES:
            raise TaxonomyError(f"reason code {rc.code} names an unknown stage: {rc.stage}")
        if not REASON_CODE_PATTERN.fullmatch(rc.code):
            raise TaxonomyError(f"reason code is not snake_case: {rc.code!r}")
        codes[rc.code] = rc
    pulse = dict(_SEED_PULSE_TYPES)
    for event_type, severity in (extra_pulse_types or {}).items():
        if event_type in pulse:
            raise TaxonomyError(f"duplicate pulse event type: {event_type}")
        if severity not in PULSE_SEVERITIES:
            raise TaxonomyError(f"pulse type {event_type} has unknown severity {severity}")
        if not PULSE_TYPE_PATTERN.fullmatch(event_type):
            raise TaxonomyError(f"pulse type breaks the dot-namespace convention: {event_type!r}")
        pulse[event_type] = severity
    return Taxonomy(MappingProxyType(codes), MappingProxyType(pulse), cross_stage_policy)


def load_taxonomy(
    extra_codes_file: Path | None = None, cross_stage_policy: CrossStagePolicy = "reject"
) -> Taxonomy:
    """The seed taxonomy, extended by an optional JSON file.

    The file looks like ``{"reason_codes": [{"code": "training_nan_loss", "stage": "training",
    "description": "...", "info_only": false}], "pulse_event_types": {"run.paused": "info"}}``.
    """
    if extra_codes_file is None:
        return build_taxonomy(cross_stage_policy=cross_stage_policy)
    doc = json.loads(extra_codes_file.read_text(encoding="utf-8"))
    extra = [
        ReasonCode(
            code=str(row["code"]),
            stage=str(row["stage"]),
            description=str(row.get("description", "")),
            info_only=bool(row.get("info_only", False)),
        )
        for row in doc.get("reason_codes", [])
    ]
    pulse = {str(k): str(v) for k, v in doc.get("pulse_event_types", {}).items()}
    return build_taxonomy(extra, pulse, cross_stage_policy)


SEED_TAXONOMY: Final[Taxonomy] = build_taxonomy()
