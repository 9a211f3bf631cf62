"""Coach stage ``cleaning``: cleaning rules, PII scanning and the review queue.

Inputs (BrewSLM events of stage ``cleaning``):

- ``cleaning_pii_block`` (payload ``dataset``, ``findings``) and
  ``cleaning_outlier_threshold_exceeded`` (payload ``removed``, ``cap``): the latest of each;
- a cleaning success (info event with ``payload.status`` completed) later than a failure clears
  it;
- any cleaning event carrying an integer ``payload.review_queue``: the latest such count of rows
  waiting for review.
"""

from __future__ import annotations

from typing import Final

from services.coach.facts import Fact, Seen, State, int_field, text_field
from services.coach.generators.common import (
    Severity,
    navigate,
    ordered,
    plural,
    uncleared,
    with_summary,
)
from shared.models import Suggestion

#: Rows waiting in the review queue from which the reminder becomes a warning.
REVIEW_QUEUE_WARN: Final = 50

PII_BLOCK: Final = "cleaning_pii_block"
OUTLIERS: Final = "cleaning_outlier_threshold_exceeded"

#: BrewSLM stages whose events `facts` reads.
EVENT_STAGES: Final = frozenset({"cleaning"})


def facts(seen: Seen) -> list[Fact]:
    """PII, outlier, success and review-queue facts of one cleaning event."""
    found: list[Fact] = []
    payload = seen.payload
    if seen.code == PII_BLOCK:
        dataset = text_field(payload, "dataset", "dataset_id")
        findings = int_field(payload, "findings")
        found.append(seen.fact("cleaning:pii", seen.ref(dataset=dataset, findings=findings)))
    elif seen.code == OUTLIERS:
        removed, cap = int_field(payload, "removed"), int_field(payload, "cap")
        found.append(seen.fact("cleaning:outliers", seen.ref(removed=removed, cap=cap)))
    elif seen.success:
        found.append(seen.fact("cleaning:ok", seen.ref()))
    queue = int_field(payload, "review_queue")
    if queue is not None:
        found.append(seen.fact("cleaning:review_queue", {"pending": queue}))
    return found


def suggest(state: State) -> list[Suggestion]:
    """Cleaning-stage suggestions, most severe first."""
    found = uncleared(
        state, "cleaning:ok", [("cleaning:pii", _pii), ("cleaning:outliers", _outliers)]
    )
    queue = state.get("cleaning:review_queue")
    if queue is not None:
        found += _review(int(queue.value.get("pending", 0)))
    return ordered(found)


def _pii(fact: Fact) -> Suggestion:
    value = fact.value
    dataset = value.get("dataset")
    findings = value.get("findings")
    what = f"dataset {dataset}" if dataset else "your dataset"
    found = f" ({plural(findings, 'finding')})" if isinstance(findings, int) else ""
    return navigate(
        "critical",
        "PII scan blocked your dataset",
        with_summary(
            f"The PII / safety scan stopped {what} from advancing{found}. Review the flagged "
            "rows, redact or drop them, then run cleaning again.",
            value,
        ),
        "Review flagged rows",
        target="cleaning-review",
        filter="pii",
        dataset=dataset,
        run_id=value.get("run_id"),
    )


def _outliers(fact: Fact) -> Suggestion:
    value = fact.value
    removed, cap = value.get("removed"), value.get("cap")
    detail = (
        f" It removed {removed} rows against a cap of {cap}."
        if isinstance(removed, int) and isinstance(cap, int)
        else ""
    )
    return navigate(
        "warning",
        "Outlier removal hit its cap",
        with_summary(
            f"Outlier removal wanted to drop more rows than allowed.{detail} Loosen the "
            "threshold or inspect the rows it flags before raising the cap.",
            value,
        ),
        "Tune the outlier rule",
        target="cleaning-rules",
        rule="outliers",
        run_id=value.get("run_id"),
    )


def _review(pending: int) -> list[Suggestion]:
    if pending <= 0:
        return []
    severity: Severity = "warning" if pending >= REVIEW_QUEUE_WARN else "info"
    return [
        navigate(
            severity,
            f"{plural(pending, 'row')} waiting for review",
            "Rows the cleaning rules could not decide on wait for a human. They stay out of "
            "the dataset until reviewed.",
            "Open the review queue",
            target="review-queue",
        )
    ]
