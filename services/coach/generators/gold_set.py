"""Coach stage ``gold_set``: gold-set size and top-up suggestions (the seed's thresholds).

Input: ingestion events with reason code ``annotation_rows_promoted`` whose ``payload.target``
is ``"gold_set"`` and whose ``payload.rows`` is a JSON integer. The gold-set row count is the sum
of those ``rows`` (each event counted once, whatever its delivery count). The stage speaks once
the project has any activity in a coached stage, so a project with no gold set hears about it.

Rule: ``rows <= GOLD_ROW_THIN_MAX`` is critical, ``rows < GOLD_ROW_COMFORTABLE_MIN`` a warning,
both with a ``run_playbook`` action topping up ``clamp(300 - rows, 20, 500)`` rows; from
``GOLD_ROW_COMFORTABLE_MIN`` on, nothing is suggested.
"""

from __future__ import annotations

from typing import Final

from services.coach.facts import Fact, Seen, State, int_field, prefixed
from services.coach.generators.common import Severity, playbook, plural
from shared.models import Suggestion

GOLD_ROW_THIN_MAX: Final = 99
GOLD_ROW_COMFORTABLE_MIN: Final = 300
SUGGESTED_TOPUP_FLOOR: Final = 20
SUGGESTED_TOPUP_CEILING: Final = 500

GOLD_TARGET: Final = "gold_set"
PROMOTED: Final = "annotation_rows_promoted"
ROWS_PREFIX: Final = "gold_set:rows:"
TOPUP_PLAYBOOK: Final = "gold_set_topup"

#: `facts` reads events of every coached stage: the taxonomy's cross-stage policy may let a
#: promotion be reported under another stage than its code's.
EVENT_STAGES: Final = None


def facts(seen: Seen) -> list[Fact]:
    """One contribution per promotion to the gold set, keyed by the event id."""
    if seen.code != PROMOTED or seen.payload.get("target") != GOLD_TARGET:
        return []
    rows = int_field(seen.payload, "rows")
    if rows is None:
        return []
    return [seen.fact(ROWS_PREFIX + seen.event_id, {"rows": rows})]


def gold_rows(state: State) -> int:
    """The gold-set row count: the sum of every promotion's rows."""
    return sum(int(f.value.get("rows", 0)) for f in prefixed(state, ROWS_PREFIX))


def topup(rows: int) -> int:
    """Rows to generate: what reaches the comfortable size, clamped to [floor, ceiling]."""
    wanted = GOLD_ROW_COMFORTABLE_MIN - rows
    return max(SUGGESTED_TOPUP_FLOOR, min(SUGGESTED_TOPUP_CEILING, wanted))


def severity_for(rows: int) -> Severity | None:
    """critical when thin, warning below comfortable, None from comfortable on."""
    if rows <= GOLD_ROW_THIN_MAX:
        return "critical"
    if rows < GOLD_ROW_COMFORTABLE_MIN:
        return "warning"
    return None


def suggest(state: State) -> list[Suggestion]:
    """The gold-set suggestion, if the set is below the comfortable size."""
    if "project:active" not in state:
        return []
    rows = gold_rows(state)
    severity = severity_for(rows)
    if severity is None:
        return []
    amount = topup(rows)
    return [
        playbook(
            severity,
            f"Your gold set has {plural(rows, 'row')}",
            _body(severity, amount),
            f"Generate {amount} rows",
            playbook=TOPUP_PLAYBOOK,
            target=GOLD_TARGET,
            rows=amount,
        )
    ]


def _body(severity: Severity, amount: int) -> str:
    if severity == "critical":
        return (
            f"Most useful first models need at least {GOLD_ROW_THIN_MAX + 1} rows of labeled "
            f"examples to evaluate against. Generate {amount} more to reach "
            f"{GOLD_ROW_COMFORTABLE_MIN}."
        )
    return (
        f"That is enough to start, but {GOLD_ROW_COMFORTABLE_MIN} rows make eval scores "
        f"stable. Generate {amount} more."
    )
