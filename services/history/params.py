"""The parameter rules of the history reads: one set for `runbus history` and the HTTP API.

Page sizes, the stage and severity enums (from `shared.taxonomy`), the Pulse event types (the
taxonomy in force) and the time filters. A broken rule raises `InvalidParameter` (HTTP 422,
CLI exit 2), with the same message on both surfaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from services.history.base import MAX_PAGE, ProjectFilter
from services.history.reads import parse_when
from shared.errors import InputError
from shared.taxonomy import PULSE_SEVERITIES, SEED_TAXONOMY, SEVERITIES, STAGES, Taxonomy

MIN_PAGE: Final = 1
#: Default page of a run timeline (the CLI reads the whole run unless given --limit).
RUN_PAGE: Final = 1000
#: Default page of a project timeline.
PROJECT_PAGE: Final = 100
#: Severities of both dialects, in the order of the taxonomy (BrewSLM's, then Pulse's own).
ALL_SEVERITIES: Final[tuple[str, ...]] = tuple(dict.fromkeys(SEVERITIES + PULSE_SEVERITIES))
#: The seed's Pulse event types (what the OpenAPI document lists; a configured taxonomy may
#: add types, which the checks below accept).
SEED_PULSE_TYPES: Final[tuple[str, ...]] = tuple(SEED_TAXONOMY.pulse_types)


class InvalidParameter(InputError):
    """A history read parameter out of its rules."""


def check_limit(limit: int, name: str = "limit", maximum: int = MAX_PAGE) -> int:
    """`limit` when it is a page size the stores serve (1 to `maximum`, `MAX_PAGE` unless
    given: a run family lists at most `MAX_CHILDREN` children)."""
    if not MIN_PAGE <= limit <= maximum:
        raise InvalidParameter(f"{name} must be between {MIN_PAGE} and {maximum}", field=name)
    return limit


def check_choice(value: str | None, choices: Iterable[str], name: str) -> str | None:
    """`value` when it is None or one of `choices`."""
    options = tuple(choices)
    if value is not None and value not in options:
        raise InvalidParameter(f"{name} must be one of {', '.join(options)}", field=name)
    return value


def check_when(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time or an age (``2h``, ``7d``) as an aware UTC time; None stays None."""
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise InvalidParameter(f"{name}: {exc}", field=name) from exc


def project_filter(
    *,
    stage: str | None = None,
    severity: str | None = None,
    reason: str | None = None,
    event_type: str | None = None,
    since: str | None = None,
    until: str | None = None,
    taxonomy: Taxonomy = SEED_TAXONOMY,
) -> ProjectFilter:
    """The filters of a project timeline as typed, checked against the rules above."""
    return ProjectFilter(
        stage=check_choice(stage, STAGES, "stage"),
        severity=check_choice(severity, ALL_SEVERITIES, "severity"),
        reason_code=reason,
        event_type=check_choice(event_type, taxonomy.pulse_types, "event_type"),
        since=check_when(since, "since"),
        until=check_when(until, "until"),
    )
