"""The benchmark's workload: realistic ~300-byte JSON run events, valid or invalid.

The mix cycles through BrewSLM events of every coached stage (so the coach does real work),
events the coach ignores (export, deployment) and Pulse events, over `PROJECTS` projects and
runs of 1000 events. Every body carries its event id (zero-padded sequence, so ids sort like
sequence numbers) and its event time ``ts``, stamped just before the XADD: the latency probes
read the publish time back from the history row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson

#: Target size of one event body (bytes), as in the issue's limit measurement.
BODY_BYTES: Final = 300
#: Projects the mixed workload spreads over.
PROJECTS: Final = 50
#: Events per run in the mixed workload.
RUN_EVENTS: Final = 1000
#: Project of the latency probes (alone in it, so its coach state shows the latest probe).
PROBE_PROJECT: Final = 900_001
#: The coach fact a latency probe (a `dataset_import_run` event) updates, latest wins.
PROBE_FACT: Final = "data:import"

Doc = dict[str, Any]


def _brewslm(stage: str, severity: str, code: str | None, payload: Doc) -> Callable[[], Doc]:
    def make() -> Doc:
        return {
            "dialect": "brewslm",
            "stage": stage,
            "severity": severity,
            "reason_code": code,
            "actor": "bench",
            "payload": dict(payload),
        }

    return make


def _pulse(event_type: str, severity: str) -> Callable[[], Doc]:
    def make() -> Doc:
        return {
            "dialect": "pulse",
            "event_type": event_type,
            "severity": severity,
            "message": "stage finished",
            "details": {"worker": "w-3", "attempt": 1},
        }

    return make


_IMPORT = _brewslm(
    "ingestion", "info", "dataset_import_run", {"accepted": 980, "rejected": 20, "source": "s3"}
)
_INVALID = _brewslm("training", "error", "bench_no_such_code", {"gpu": 0})
#: One of each kind, in the order the mix cycles through them.
TEMPLATES: Final[tuple[Callable[[], Doc], ...]] = (
    _IMPORT,
    _brewslm("cleaning", "info", None, {"status": "completed", "removed": 3}),
    _brewslm("training", "info", None, {"status": "running", "step": 1200, "loss": 0.41}),
    _brewslm("training", "error", "training_oom", {"gpu": 0, "batch_size": 64}),
    _brewslm("eval", "info", None, {"status": "completed", "score": 0.91}),
    _brewslm("eval", "warning", "eval_judge_unavailable", {"provider": "judge-a"}),
    _brewslm("adapter", "info", None, {"status": "completed"}),
    _brewslm("export", "info", None, {"format": "gguf"}),
    _brewslm("deployment", "info", None, {"endpoint": "prod-1"}),
    _pulse("stage.completed", "info"),
)


def now_iso() -> str:
    """The current time as the ISO 8601 text events carry."""
    return datetime.now(UTC).isoformat()


def event_id(prefix: str, seq: int) -> str:
    """Event id of sequence number `seq`: ids sort like their sequence numbers."""
    return f"{prefix}{seq:010d}"


def seq_of(prefix: str, eid: str) -> int:
    """The sequence number inside an id made by `event_id`."""
    return int(eid[len(prefix) :])


def run_of(seq: int, prefix: str, *, probe: bool = False) -> str:
    """Run id of event `seq` (what a producer routes it by to a partition)."""
    return f"{prefix}probe" if probe else f"{prefix}run-{seq // RUN_EVENTS}"


def _document(seq: int, prefix: str, ts: str, invalid: bool, probe: bool) -> Doc:
    template = _INVALID if invalid else _IMPORT if probe else TEMPLATES[seq % len(TEMPLATES)]
    doc = template()
    project = PROBE_PROJECT if probe else seq % PROJECTS
    run = run_of(seq, prefix, probe=probe)
    doc |= {"event_id": event_id(prefix, seq), "run_id": run, "project_id": project}
    doc["created_at" if doc["dialect"] == "pulse" else "ts"] = ts
    return doc


def _padded(doc: Doc) -> bytes:
    key = "message" if doc["dialect"] == "pulse" else "summary"
    doc[key] = ""
    size = len(orjson.dumps(doc))
    doc[key] = "x" * max(0, BODY_BYTES - size)
    return orjson.dumps(doc)


def body(seq: int, prefix: str, ts: str, *, invalid: bool = False, probe: bool = False) -> bytes:
    """The JSON body of event `seq` (about `BODY_BYTES` bytes).

    `invalid` gives it an unknown reason code (the validator dead-letters it with
    ``invalid_reason_code:...``); `probe` makes it a latency probe of `PROBE_PROJECT`.
    """
    return _padded(_document(seq, prefix, ts, invalid, probe))
