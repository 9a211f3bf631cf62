"""The demo workload, built without I/O: every project's story, Pulse runs, invalid entries.

Each project goes through ingestion (a failed import, then one that rejects part of its rows),
cleaning (a PII block, then a clean pass leaving rows to review), annotation into a gold set
(below the coach's comfortable size), training (an OOM, then a successful retry, then an
autopilot run whose nested training children fail again), eval (a judge outage, then a run
with failure clusters), export and deployment. Pulse runs add run./stage./schedule. events.
So every coach stage has something to say about every project. A share of the entries is
invalid on purpose (unknown codes, wrong stages, broken JSON...) so there are dead letters.

Event times follow story order (the coach decides by event time, so the retry after the OOM
really clears it) and are relative: each story is laid out on a clock derived from the seed,
then the whole workload is shifted to end a minute before `now`. So a seed gives the same run
ids, figures and time gaps every time, and "the last two hours" always holds the latest events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.taxonomy import SEED_TAXONOMY

Doc = dict[str, Any]
#: The catalog severity of each Pulse event type.
PULSE_SEVERITY = SEED_TAXONOMY.pulse_types

#: Invalid entries, cycled through: each dead-letters with the code in its comment.
INVALID_BODIES: tuple[bytes, ...] = tuple(
    orjson.dumps(doc) if isinstance(doc, dict) else doc
    for doc in (
        # invalid_reason_code:training_gpu_on_fire
        {
            "project_id": 0,
            "run_id": "exp-x",
            "stage": "training",
            "severity": "error",
            "reason_code": "training_gpu_on_fire",
            "ts": "2024-05-01T12:00:00Z",
        },
        # invalid_stage:preprocessing
        {
            "project_id": 0,
            "run_id": "prep-1",
            "stage": "preprocessing",
            "severity": "info",
            "ts": "2024-05-01T12:00:00Z",
        },
        # missing_reason_code
        {
            "project_id": 0,
            "run_id": "eval-x",
            "stage": "eval",
            "severity": "error",
            "summary": "eval crashed",
            "ts": "2024-05-01T12:00:00Z",
        },
        # reason_code_stage_mismatch:training_oom
        {
            "project_id": 0,
            "run_id": "eval-y",
            "stage": "eval",
            "severity": "error",
            "reason_code": "training_oom",
            "ts": "2024-05-01T12:00:00Z",
        },
        # invalid_event_type:run.exploded
        {
            "run_id": "pulse-x",
            "event_type": "run.exploded",
            "severity": "error",
            "created_at": "2024-05-01T12:00:00Z",
        },
        # severity_mismatch:run.completed
        {
            "run_id": "pulse-y",
            "event_type": "run.completed",
            "severity": "error",
            "created_at": "2024-05-01T12:00:00Z",
        },
        # schema_violation:project_id
        {
            "project_id": "seven",
            "run_id": "exp-z",
            "stage": "training",
            "severity": "info",
            "ts": "2024-05-01T12:00:00Z",
        },
        # unknown_dialect
        {"hello": "world"},
        # malformed_json
        b'{"project_id": 1, "run_id": "exp-1", "stage": ',
    )
)


@dataclass(frozen=True, slots=True)
class Item:
    """One entry to publish: a valid event (validated by the producer) or raw invalid bytes."""

    event: Doc | None = None
    raw: bytes | None = None


@dataclass
class Story:
    """Events of one project, in event-time order, on a private clock."""

    project_id: int
    variant: int
    clock: datetime
    rng: random.Random
    events: list[Doc] = field(default_factory=list)

    def tick(self, low: int = 20, high: int = 240) -> str:
        """The next event time: a little later than the last one."""
        self.clock += timedelta(seconds=self.rng.randint(low, high))
        return self.clock.isoformat()

    def run(self, prefix: str) -> str:
        """A fresh run id, ``<prefix>-<n>`` as BrewSLM names them."""
        return f"{prefix}-{self.project_id}{self.rng.randint(100, 999)}"

    def pick(self, *values: Any) -> Any:
        """The variant's choice among `values` (projects differ, runs are reproducible)."""
        return values[self.variant % len(values)]

    def ev(
        self,
        run_id: str,
        stage: str,
        severity: str,
        code: str | None,
        summary: str | None,
        parent: str | None = None,
        **payload: Any,
    ) -> None:
        """Append a BrewSLM RunEvent."""
        event: Doc = {"project_id": self.project_id, "run_id": run_id, "stage": stage}
        event |= {"severity": severity, "ts": self.tick(), "payload": payload}
        optional = {"reason_code": code, "summary": summary, "parent_run_id": parent}
        event.update({k: v for k, v in optional.items() if v is not None})
        self.events.append(event)

    def pulse(
        self, run_id: str, event_type: str, message: str, parent: str | None = None, **details: Any
    ) -> None:
        """Append a Pulse event (its severity is the catalog's)."""
        event: Doc = {"run_id": run_id, "project_id": self.project_id, "event_type": event_type}
        event |= {"severity": PULSE_SEVERITY[event_type], "message": message}
        event["created_at"] = self.tick(5, 60)
        if details:
            event["details"] = details
        if parent is not None:
            event["parent_run_id"] = parent
        self.events.append(event)


def ingestion(s: Story) -> None:
    """A failed import, then one that lands rows but rejects a share of them."""
    source = "s3://demo/support.csv"
    s.ev(
        s.run("import"),
        "ingestion",
        "error",
        "dataset_import_failed",
        "import of support.csv crashed",
        source=source,
        error="connection reset",
    )
    total = s.rng.randint(1200, 5000)
    rejected = int(total * s.pick(0.15, 0.55, 0.3, 0.12))
    s.ev(
        s.run("import"),
        "ingestion",
        "info",
        "dataset_import_run",
        f"imported {total - rejected} rows",
        source=source,
        locator="support.csv",
        mapper="csv-default",
        accepted=total - rejected,
        rejected=rejected,
        written_path=f"datasets/{s.project_id}/support.parquet",
        config_id=f"cfg-{s.project_id}",
    )


def cleaning(s: Story) -> None:
    """A PII block, then a clean pass that leaves rows waiting for review."""
    s.ev(
        s.run("clean"),
        "cleaning",
        "error",
        "cleaning_pii_block",
        "PII scan blocked support.parquet",
        dataset=f"support-{s.project_id}",
        findings=s.rng.randint(3, 40),
    )
    s.ev(
        s.run("clean"),
        "cleaning",
        "info",
        None,
        "cleaning passed after redaction",
        status="completed",
        review_queue=s.pick(12, 64, 30, 75),
    )


def annotation(s: Story, labels: int) -> None:
    """A label job, `labels` reviewer labels, and promotions into a gold set that stays thin."""
    run = s.run("annot")
    s.ev(
        run,
        "ingestion",
        "info",
        "annotation_job_created",
        "gold-set labeling job",
        job_id=run,
        name="gold set v1",
        label_type="classification",
        target_rows=300,
    )
    for n in range(labels):
        label = s.rng.choice(("refund", "bug", "howto"))
        s.ev(run, "ingestion", "info", "annotation_label_submitted", None, row=n, label=label)
    gold = s.pick(78, 180, 64, 240)
    for rows in (gold // 2, gold - gold // 2):
        s.ev(
            run,
            "ingestion",
            "info",
            "annotation_rows_promoted",
            f"{rows} labeled rows promoted to the gold set",
            target="gold_set",
            rows=rows,
        )


def training(s: Story) -> None:
    """An OOM, then a successful retry (which clears the OOM in the coach)."""
    exp = s.run("exp")
    s.ev(exp, "training", "info", None, "SFT run dispatched", status="running")
    s.ev(
        exp,
        "training",
        "error",
        "training_oom",
        "CUDA out of memory at step 412",
        batch_size=32,
        model="llama-3-8b",
        step=412,
    )
    s.ev(
        s.run("exp"),
        "training",
        "info",
        None,
        "retry with batch size 16 finished",
        status="completed",
        batch_size=16,
        retry_of=exp,
    )


def autopilot(s: Story) -> str:
    """An autopilot run whose nested training children fail again; returns its run id."""
    parent = f"autopilot-{s.rng.getrandbits(32):08x}"
    s.ev(parent, "autopilot", "info", None, "autopilot started", intent="improve eval score")
    for attempt in (1, 2):
        child = s.run("exp")
        s.ev(
            child,
            "training",
            "info",
            None,
            f"autopilot attempt {attempt}",
            parent,
            status="running",
        )
        if s.variant % 2 == 0:
            s.ev(
                child,
                "training",
                "error",
                "training_runtime_error",
                "NaN loss at step 90",
                parent,
                step=90,
            )
        else:
            s.ev(
                child,
                "training",
                "error",
                "training_timeout",
                "wallclock budget exceeded",
                parent,
                budget_s=7200,
            )
    s.ev(parent, "autopilot", "warning", "autopilot_no_safe_plan", "autopilot gave up")
    return parent


def evaluation(s: Story) -> None:
    """A judge outage, then an eval that reports failure clusters."""
    s.ev(
        s.run("eval"),
        "eval",
        "error",
        "eval_judge_unavailable",
        "judge quota exhausted",
        provider="openai",
    )
    p = s.project_id
    clusters = [
        {"id": f"c-{p}-refunds", "size": s.rng.randint(20, 60), "label": "refunds with order ids"},
        {"id": f"c-{p}-multi", "size": s.rng.randint(5, 19), "label": "multi-turn clarifications"},
        {"id": f"c-{p}-noise", "size": 2, "label": "typos"},
    ]
    s.ev(
        s.run("eval"),
        "eval",
        "info",
        None,
        "eval pack support-v2 finished",
        status="completed",
        pass_rate=0.71,
        failure_clusters=clusters,
    )


def export(s: Story) -> None:
    """A failed quantization, then a bundle."""
    s.ev(
        s.run("export"),
        "export",
        "error",
        "export_quantization_failed",
        "q4 quantization failed",
        format="gguf",
        bits=4,
    )
    s.ev(
        s.run("export"),
        "export",
        "info",
        None,
        "bundle exported",
        status="completed",
        format="gguf",
        bits=8,
    )


def deployment(s: Story) -> None:
    """A deployment to staging; drifting for every other project."""
    deploy = s.run("deploy")
    s.ev(
        deploy,
        "deployment",
        "info",
        None,
        "deployed to staging",
        status="completed",
        endpoint=f"https://staging.example/{s.project_id}",
    )
    if s.variant % 2:
        s.ev(
            deploy,
            "deployment",
            "warning",
            "deployment_drift_detected",
            "pass rate dropped 6 points vs baseline",
            delta=-0.06,
        )


def pulse_runs(s: Story, parent: str, stages: int) -> None:
    """A Pulse pipeline run (nested under the autopilot run) and a scheduled nightly run."""
    run = f"pulse-{s.project_id}-{s.rng.getrandbits(24):06x}"
    for n in range(stages):
        s.pulse(run, "stage.completed", f"stage s{n} completed", parent, stage=f"s{n}")
    s.pulse(run, "stage.rewritten", "stage rewrite admitted", parent, stage="eval")
    s.pulse(run, "stage.failed", "eval stage failed", parent, stage="eval", error_type="timeout")
    s.pulse(run, "run.failed.settled", "graph settled with failures", parent)
    nightly = f"pulse-nightly-{s.project_id}"
    s.pulse(nightly, "run.completed", "nightly run completed")
    next_run = (s.clock + timedelta(days=1)).isoformat()
    s.pulse(
        nightly,
        "schedule.advanced",
        "next nightly run scheduled",
        None,
        next_run_at=next_run,
        outcome="completed",
    )


#: Events of a story besides the fillers (labels and Pulse stages).
FIXED_EVENTS = 26


def project_story(
    project_id: int, variant: int, size: int, start: datetime, seed: int
) -> list[Doc]:
    """Every event of one project, in event-time order (`size` of them, at least 26)."""
    story = Story(project_id, variant, start, random.Random(seed * 1_000_003 + project_id))
    fillers = max(0, size - FIXED_EVENTS)
    ingestion(story)
    cleaning(story)
    annotation(story, labels=fillers // 2)
    training(story)
    parent = autopilot(story)
    evaluation(story)
    export(story)
    deployment(story)
    pulse_runs(story, parent, stages=fillers - fillers // 2)
    return story.events


def invalid_count(valid: int, ratio: float) -> int:
    """How many invalid entries make `ratio` of the whole workload."""
    if ratio <= 0:
        return 0
    ratio = min(ratio, 0.9)
    return max(1, round(valid * ratio / (1 - ratio)))


def workload(
    projects: int,
    size: int,
    invalid_ratio: float,
    *,
    first_project: int = 1,
    seed: int = 0,
    now: datetime | None = None,
) -> list[Item]:
    """The whole workload: projects' stories interleaved, invalid entries sprinkled in."""
    stories = [project_story(first_project + n, n, size, EPOCH, seed) for n in range(projects)]
    shift = (now or datetime.now(UTC)) - END_MARGIN - max(_last_time(s) for s in stories)
    items = [Item(event=_shifted(e, shift)) for e in _interleave(stories)]
    bad = invalid_count(len(items), invalid_ratio)
    rng = random.Random(seed)
    for n in range(bad):
        items.insert(rng.randint(0, len(items)), Item(raw=INVALID_BODIES[n % len(INVALID_BODIES)]))
    return items


#: Where the stories' clocks start before the workload is shifted to end at `now`.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: The latest event of the workload is this long before `now`.
END_MARGIN = timedelta(minutes=1)
#: The time fields of a document; Pulse `details.next_run_at` is shifted with them.
TIME_FIELDS = ("ts", "created_at")


def _last_time(story: list[Doc]) -> datetime:
    return max(datetime.fromisoformat(e.get("ts") or e["created_at"]) for e in story)


def _shifted(event: Doc, shift: timedelta) -> Doc:
    """`event` with every time moved by `shift` (a copy; the story's gaps are kept)."""

    def move(text: str) -> str:
        return (datetime.fromisoformat(text) + shift).isoformat()

    moved = {k: move(v) if k in TIME_FIELDS else v for k, v in event.items()}
    details = moved.get("details")
    if isinstance(details, dict) and "next_run_at" in details:
        moved["details"] = details | {"next_run_at": move(details["next_run_at"])}
    return moved


def _interleave(stories: list[list[Doc]]) -> Iterator[Doc]:
    """Round-robin over the projects (each project's events stay in order)."""
    longest = max((len(s) for s in stories), default=0)
    for index in range(longest):
        for story in stories:
            if index < len(story):
                yield story[index]


def projects_of(items: list[Item]) -> list[int]:
    """Project ids the workload touches, ascending."""
    return sorted({e["project_id"] for e in _events(items) if isinstance(e.get("project_id"), int)})


def autopilot_runs(items: list[Item]) -> list[str]:
    """The autopilot (parent) runs of the workload, in order of appearance."""
    runs = (
        e["run_id"] for e in _events(items) if str(e.get("run_id", "")).startswith("autopilot-")
    )
    return list(dict.fromkeys(runs))


def nested_runs(items: list[Item]) -> dict[str, list[str]]:
    """Each autopilot run and the runs nested under it (training children, Pulse), in order."""
    nested: dict[str, list[str]] = {run: [] for run in autopilot_runs(items)}
    for event in _events(items):
        children = nested.get(str(event.get("parent_run_id")))
        if children is not None and event["run_id"] not in children:
            children.append(event["run_id"])
    return nested


def _events(items: list[Item]) -> Iterator[Doc]:
    return (item.event for item in items if item.event is not None)
