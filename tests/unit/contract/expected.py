"""The seed catalogs, copied by hand from the seed documents, independently of `shared.taxonomy`.

BrewSLM (seed 000, "The reason-code taxonomy, by stage"): every code of each stage, with
``True`` where the seed marks it ``INFO —`` (ordinary progress, never a failure). Pulse (seed
004, "3. Catalog"): every event type with its severity. The contract tests compare the module
against these lists, so a code lost, moved or re-flagged in the module fails a test.
"""

from __future__ import annotations

from typing import Final

SEED_STAGES: Final = (
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
SEED_SEVERITIES: Final = ("info", "warning", "error", "critical")
PULSE_SEVERITIES: Final = ("info", "warn", "error")

#: stage -> [(reason code, INFO-only?)], in the seed's order.
SEED_REASON_CODES: Final[dict[str, list[tuple[str, bool]]]] = {
    "ingestion": [
        ("ingest_unsupported_format", False),
        ("ingest_io_error", False),
        ("ingest_validation_failed", False),
        ("dataset_import_run", True),
        ("dataset_import_failed", False),
        ("annotation_job_created", True),
        ("annotation_label_submitted", True),
        ("annotation_rows_promoted", True),
        ("distillation_teacher_capture", True),
    ],
    "cleaning": [
        ("cleaning_outlier_threshold_exceeded", False),
        ("cleaning_pii_block", False),
    ],
    "adapter": [
        ("adapter_schema_mismatch", False),
        ("adapter_field_resolution_failed", False),
    ],
    "training": [
        ("training_dispatch_error", False),
        ("training_runtime_error", False),
        ("training_oom", False),
        ("training_timeout", False),
        ("training_cancelled", False),
    ],
    "eval": [
        ("eval_runtime_error", False),
        ("eval_dataset_missing", False),
        ("eval_judge_unavailable", False),
    ],
    "export": [
        ("export_run_failed", False),
        ("export_artifact_missing", False),
        ("export_quantization_failed", False),
    ],
    "deployment": [
        ("deployment_smoke_failed", False),
        ("deployment_promote_blocked", False),
        ("deployment_rollback_no_predecessor", False),
        ("deployment_drift_detected", False),
    ],
    "autopilot": [
        ("autopilot_repair_blocked", False),
        ("autopilot_strict_mode_refused", False),
        ("autopilot_no_safe_plan", False),
    ],
    "system": [
        ("system_db_error", False),
        ("system_config_invalid", False),
        ("extension_load_failed", False),
        ("extension_contract_invalid", False),
    ],
}

#: Pulse event type -> severity, in the seed's order.
SEED_PULSE_TYPES: Final[dict[str, str]] = {
    "run.completed": "info",
    "run.failed": "error",
    "run.failed.settled": "error",
    "run.suspended": "info",
    "run.cancelled": "info",
    "run.shutdown": "info",
    "run.stuck": "error",
    "run.graph_state_persist_failed": "error",
    "run.graph_state_stale_write": "warn",
    "stage.completed": "info",
    "stage.failed": "error",
    "stage.skipped": "warn",
    "stage.rewritten": "info",
    "stage.rewrite_degraded": "warn",
    "stage.worker_exception_reified": "error",
    "stage.worker_exception_unattributed": "error",
    "stage.cancel_before_retry_persist_failed": "warn",
    "schedule.advanced": "info",
    "schedule.restored": "warn",
    "lease.lost": "error",
}

#: Every (stage, code, info_only) row, flattened for parametrized tests.
SEED_CODE_ROWS: Final = [
    (stage, code, info_only)
    for stage, rows in SEED_REASON_CODES.items()
    for code, info_only in rows
]
