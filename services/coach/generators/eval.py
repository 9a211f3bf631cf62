"""Coach stage ``eval``: eval packs, failure clusters and remediation.

Inputs (BrewSLM events of stage ``eval``):

- the latest failure-cluster report: any eval event whose ``payload.failure_clusters`` is a list
  of objects ``{id | cluster_id, size | count, label | name}``; an eval success (info event with
  ``payload.status`` completed) without that key reports no clusters;
- ``eval_dataset_missing`` (payload ``dataset``, ``eval_pack``), ``eval_judge_unavailable``
  (payload ``provider``), ``eval_runtime_error``: the latest of each, cleared by a later eval
  success.
"""

from __future__ import annotations

from typing import Any, Final

from services.coach.facts import TEXT_MAX, Fact, Seen, State, int_field, text_field
from services.coach.generators.common import (
    Severity,
    augment,
    navigate,
    ordered,
    uncleared,
    with_summary,
)
from shared.models import Suggestion

#: Clusters smaller than this are noise and suggest nothing (clusters without a size are kept).
CLUSTER_MIN_SIZE: Final = 3
#: Clusters at least this big are a warning; smaller ones are info.
CLUSTER_WARN_SIZE: Final = 20
#: At most this many clusters are suggested (the biggest).
CLUSTER_SUGGESTIONS_MAX: Final = 5

FAILURES: Final[dict[str, str]] = {
    "eval_dataset_missing": "eval:dataset_missing",
    "eval_judge_unavailable": "eval:judge",
    "eval_runtime_error": "eval:runtime",
}

#: BrewSLM stages whose events `facts` reads.
EVENT_STAGES: Final = frozenset({"eval"})


def facts(seen: Seen) -> list[Fact]:
    """Cluster-report, failure and success facts of one eval event."""
    payload = seen.payload
    found: list[Fact] = []
    key = FAILURES.get(seen.code or "")
    if key is not None:
        extra = {
            "dataset": text_field(payload, "dataset", "dataset_id"),
            "eval_pack": text_field(payload, "eval_pack"),
            "provider": text_field(payload, "provider"),
        }
        found.append(seen.fact(key, seen.ref(code=seen.code, **extra)))
    elif seen.success:
        found.append(seen.fact("eval:ok", seen.ref()))
    raw = payload.get("failure_clusters")
    if isinstance(raw, list) or (seen.success and raw is None):
        clusters = _clusters(raw or [])
        found.append(seen.fact("eval:clusters", seen.ref(clusters=clusters)))
    return found


def _clusters(raw: list[Any]) -> list[dict[str, Any]]:
    """The clusters worth suggesting, biggest first, at most CLUSTER_SUGGESTIONS_MAX."""
    kept: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        cluster_id = text_field(item, "id", "cluster_id")
        if cluster_id is None:
            continue
        size = int_field(item, "size", "count")
        if size is not None and size < CLUSTER_MIN_SIZE:
            continue
        label = text_field(item, "label", "name")
        kept.append({"id": cluster_id, "size": size, "label": label})
    # Unknown sizes sort last; ties by id so the order never depends on the payload's order.
    kept.sort(key=lambda c: (-(c["size"] if c["size"] is not None else -1), c["id"]))
    return [{k: v for k, v in c.items() if v is not None} for c in kept][:CLUSTER_SUGGESTIONS_MAX]


def suggest(state: State) -> list[Suggestion]:
    """Eval-stage suggestions, most severe first."""
    found = uncleared(
        state,
        "eval:ok",
        [
            ("eval:dataset_missing", _dataset_missing),
            ("eval:judge", _judge),
            ("eval:runtime", _runtime),
        ],
    )
    report = state.get("eval:clusters")
    if report is not None:
        run_id = report.value.get("run_id")
        found += [_cluster(c, run_id) for c in report.value.get("clusters", [])]
    return ordered(found)


def _cluster(cluster: dict[str, Any], run_id: str | None) -> Suggestion:
    size = cluster.get("size")
    label = cluster.get("label") or cluster["id"]
    severity: Severity = (
        "warning" if isinstance(size, int) and size >= CLUSTER_WARN_SIZE else "info"
    )
    count = f" has {size} failing examples" if isinstance(size, int) else " keeps failing"
    return augment(
        severity,
        f"Failure cluster “{str(label)[:TEXT_MAX]}”{count}",
        "The eval run grouped these failures together. Use the cluster as a data source: "
        "generate training rows that cover it, then retrain and re-run the eval.",
        "Augment from this cluster",
        cluster_id=cluster["id"],
        eval_run_id=run_id,
    )


def _dataset_missing(fact: Fact) -> Suggestion:
    value = fact.value
    dataset = value.get("dataset")
    what = f"dataset {dataset}" if dataset else "a dataset"
    return navigate(
        "critical",
        "Your eval pack references a missing dataset",
        with_summary(
            f"The eval pack points at {what} that no longer exists. Re-link the pack to an "
            "existing dataset or restore it.",
            value,
        ),
        "Fix the eval pack",
        target="eval-packs",
        eval_pack=value.get("eval_pack"),
        dataset=dataset,
    )


def _judge(fact: Fact) -> Suggestion:
    provider = fact.value.get("provider")
    who = f" ({provider})" if provider else ""
    return navigate(
        "warning",
        "The LLM judge is unavailable",
        with_summary(
            f"LLM-as-judge calls failed{who}: provider down, quota exhausted or misconfigured. "
            "Check the judge settings or switch to a rule-based metric.",
            fact.value,
        ),
        "Check judge settings",
        target="eval-settings",
        section="judge",
    )


def _runtime(fact: Fact) -> Suggestion:
    return navigate(
        "warning",
        "Your last eval run failed",
        with_summary("The evaluation runner raised before finishing.", fact.value),
        "Inspect the eval run",
        target="eval-runs",
        run_id=fact.value.get("run_id"),
    )
