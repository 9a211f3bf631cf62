"""Every documented coach rule as a case: the events that raise it, what it must suggest, and the
later events (by event time) that clear it. Shared by the unit and integration tiers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.models import RunEvent, Suggestion
from tests.unit.coach.builders import event, success

Events = Callable[[int], list[RunEvent]]


@dataclass(frozen=True)
class Case:
    """One rule: raise events (at t <= 10), the expected suggestion, clear events (t >= 100)."""

    name: str
    stage: str
    raise_: Events
    severity: str
    title: str
    kind: str
    clear: Events
    params: dict[str, Any] = field(default_factory=dict)

    def find(self, found: list[Suggestion]) -> Suggestion | None:
        """The suggestion of this rule among `found`, if any."""
        return next((s for s in found if s.title.startswith(self.title)), None)

    def check(self, found: list[Suggestion]) -> None:
        """Assert the rule's suggestion is in `found`, with its severity, action and params."""
        hit = self.find(found)
        assert hit is not None, f"{self.name}: no '{self.title}' in {[s.title for s in found]}"
        assert hit.severity == self.severity
        assert hit.action.kind == self.kind
        assert self.params.items() <= hit.action.params.items(), hit.action.params


def _import_ok(p: int, t: float = 100, accepted: int = 1000, rejected: int = 0) -> RunEvent:
    payload = {"accepted": accepted, "rejected": rejected, "source": "s3://b/x.csv"}
    return event("dataset_import_run", t=t, project=p, payload=payload)


CASES: list[Case] = [
    # --- data ---
    Case("no data yet", "data",
         lambda p: [event("training_oom", t=1, project=p)],
         "info", "No data yet", "navigate",
         lambda p: [_import_ok(p)], {"target": "data-import"}),
    Case("import failed", "data",
         lambda p: [event("dataset_import_failed", t=1, project=p, summary="bad header")],
         "critical", "Your last import failed", "navigate",
         lambda p: [_import_ok(p)],
         {"target": "data-import", "reason_code": "dataset_import_failed"}),
    Case("io error", "data",
         lambda p: [event("ingest_io_error", t=1, project=p)],
         "critical", "Your last import failed", "navigate",
         lambda p: [_import_ok(p)], {"reason_code": "ingest_io_error"}),
    Case("unsupported format", "data",
         lambda p: [event("ingest_unsupported_format", t=1, project=p, payload={"format": "xlsx"})],
         "warning", "Unsupported file format: xlsx", "navigate",
         lambda p: [_import_ok(p)], {"target": "data-import"}),
    Case("rejected rows warning", "data",
         lambda p: [_import_ok(p, t=1, accepted=800, rejected=200)],
         "warning", "200 rows of 1000 were rejected", "navigate",
         lambda p: [_import_ok(p, accepted=1000, rejected=5)],
         {"target": "adapter-studio", "source": "s3://b/x.csv"}),
    Case("rejected rows critical", "data",
         lambda p: [_import_ok(p, t=1, accepted=100, rejected=300)],
         "critical", "300 rows of 400 were rejected", "navigate",
         lambda p: [_import_ok(p)], {"target": "adapter-studio"}),
    Case("adapter mismatch", "data",
         lambda p: [event("adapter_schema_mismatch", t=1, project=p, payload={"field": "answer"})],
         "warning", "Adapter Studio could not map your data", "navigate",
         lambda p: [success("adapter", t=100, project=p)],
         {"target": "adapter-studio", "field": "answer"}),
    Case("adapter field resolution", "data",
         lambda p: [event("adapter_field_resolution_failed", t=1, project=p)],
         "warning", "Adapter Studio could not map your data", "navigate",
         lambda p: [success("adapter", t=100, project=p)],
         {"reason_code": "adapter_field_resolution_failed"}),
    # --- cleaning ---
    Case("pii block", "cleaning",
         lambda p: [event("cleaning_pii_block", severity="critical", t=1, project=p,
                          payload={"dataset": "ds-9", "findings": 12})],
         "critical", "PII scan blocked your dataset", "navigate",
         lambda p: [success("cleaning", t=100, project=p)],
         {"target": "cleaning-review", "dataset": "ds-9"}),
    Case("outlier cap", "cleaning",
         lambda p: [event("cleaning_outlier_threshold_exceeded", t=1, project=p,
                          payload={"removed": 420, "cap": 200})],
         "warning", "Outlier removal hit its cap", "navigate",
         lambda p: [success("cleaning", t=100, project=p)],
         {"target": "cleaning-rules", "rule": "outliers"}),
    Case("review queue", "cleaning",
         lambda p: [event(stage="cleaning", t=1, project=p, payload={"review_queue": 75})],
         "warning", "75 rows waiting for review", "navigate",
         lambda p: [event(stage="cleaning", t=100, project=p, payload={"review_queue": 0})],
         {"target": "review-queue"}),
    # --- gold set (boundaries are tested on their own) ---
    Case("gold set thin", "gold_set",
         lambda p: [event("annotation_rows_promoted", t=1, project=p,
                          payload={"target": "gold_set", "rows": 78})],
         "critical", "Your gold set has 78 rows", "run_playbook",
         lambda p: [event("annotation_rows_promoted", t=100, project=p,
                          payload={"target": "gold_set", "rows": 222})],
         {"rows": 222, "playbook": "gold_set_topup"}),
    # --- training ---
    Case("oom", "training",
         lambda p: [event("training_oom", t=1, project=p, payload={"batch_size": 64})],
         "critical", "Training ran out of GPU memory", "navigate",
         lambda p: [success("training", t=100, project=p)],
         {"target": "training-config", "section": "batch_size"}),
    Case("timeout", "training",
         lambda p: [event("training_timeout", t=1, project=p, payload={"budget_s": 3600})],
         "warning", "Training hit its time budget", "navigate",
         lambda p: [success("training", t=100, project=p)],
         {"target": "training-config", "section": "budget"}),
    Case("repeated runtime errors", "training",
         lambda p: [event("training_runtime_error", t=i, project=p, run_id=f"exp-{i}")
                    for i in (1, 2, 3)],
         "critical", "Training failed 3 times in a row", "navigate",
         lambda p: [success("training", t=100, project=p)],
         {"target": "training-runs", "run_id": "exp-3"}),
    Case("dispatch error", "training",
         lambda p: [event("training_dispatch_error", t=1, project=p, payload={"backend": "k8s"})],
         "critical", "Training could not be dispatched", "navigate",
         lambda p: [success("training", t=100, project=p)],
         {"target": "training-preflight", "backend": "k8s"}),
    # --- eval ---
    Case("failure cluster", "eval",
         lambda p: [event(stage="eval", severity="warning", t=1, project=p, run_id="eval-5",
                          payload={"failure_clusters": [
                              {"id": "c-dates", "size": 42, "label": "date arithmetic"},
                              {"id": "c-tiny", "size": 1}]})],
         "warning", "Failure cluster “date arithmetic” has 42 failing examples",
         "augment_from_cluster",
         lambda p: [success("eval", t=100, project=p, failure_clusters=[])],
         {"cluster_id": "c-dates", "eval_run_id": "eval-5"}),
    Case("dataset missing", "eval",
         lambda p: [event("eval_dataset_missing", t=1, project=p,
                          payload={"dataset": "ds-3", "eval_pack": "pack-1"})],
         "critical", "Your eval pack references a missing dataset", "navigate",
         lambda p: [success("eval", t=100, project=p)],
         {"target": "eval-packs", "eval_pack": "pack-1"}),
    Case("judge unavailable", "eval",
         lambda p: [event("eval_judge_unavailable", t=1, project=p, payload={"provider": "acme"})],
         "warning", "The LLM judge is unavailable", "navigate",
         lambda p: [success("eval", t=100, project=p)],
         {"target": "eval-settings", "section": "judge"}),
    Case("eval runtime error", "eval",
         lambda p: [event("eval_runtime_error", t=1, project=p, run_id="eval-8")],
         "warning", "Your last eval run failed", "navigate",
         lambda p: [success("eval", t=100, project=p)],
         {"target": "eval-runs", "run_id": "eval-8"}),
]  # fmt: skip
