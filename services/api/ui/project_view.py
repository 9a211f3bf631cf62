"""What the project page shows, built from the library calls the JSON API makes.

The coach strips are `services.coach.reads.get_project` / `get_document` (what
``GET /api/projects/{id}/coach`` and ``.../coach/{stage}`` serve); the timeline is
`services.history.reads.read_project` with the filters checked by
`services.history.params.project_filter` (what ``GET /api/projects/{id}/events`` does), so the
page and the API accept the same parameters and refuse the same ones with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from services.history.base import Page, ProjectFilter
from services.history.params import (
    ALL_SEVERITIES,
    PROJECT_PAGE,
    InvalidParameter,
    check_limit,
    project_filter,
)
from shared.models import COACH_STAGES, ActionRequest, CoachDocument
from shared.taxonomy import STAGES, Taxonomy

#: The timeline's query parameters, exactly those of ``GET /api/projects/{id}/events``.
TIMELINE_PARAMS = ("stage", "severity", "reason", "event_type", "since", "until", "cursor", "limit")
#: The filters among them (the form's fields; paging is the cursor and the limit).
FILTER_PARAMS = TIMELINE_PARAMS[:6]
#: How a strip learns that its document changed: the page's event stream (the live hub's
#: coach subscription) sends ``coach-<stage>`` when a stage's document changes and
#: ``coach-resync`` when something may have been missed (the change channel was down, the page
#: was slow, the stream has just (re)connected); the strip then fetches itself again, and an
#: unchanged one answers 204.
RESYNC_EVENT = "coach-resync"


def coach_event(stage: str) -> str:
    """The event-stream event that names a changed coach stage."""
    return f"coach-{stage}"


#: Most severe first: a strip takes the colour of its most severe suggestion.
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    """The timeline parameters as given (empty form fields mean "any")."""

    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, params: dict[str, str]) -> TimelineQuery:
        """The timeline parameters among `params`; a GET form's empty fields are dropped."""
        return cls({k: params[k] for k in TIMELINE_PARAMS if params.get(k, "").strip()})

    def filters(self, taxonomy: Taxonomy) -> ProjectFilter:
        """The checked filters (`InvalidParameter` as the API raises it)."""
        v = self.values
        return project_filter(
            stage=v.get("stage"), severity=v.get("severity"), reason=v.get("reason"),
            event_type=v.get("event_type"), since=v.get("since"), until=v.get("until"),
            taxonomy=taxonomy,
        )  # fmt: skip

    @property
    def limit(self) -> int:
        """The page size (the API's default and bounds)."""
        text = self.values.get("limit")
        if text is None:
            return PROJECT_PAGE
        try:
            number = int(text)
        except ValueError:
            raise InvalidParameter("limit must be an integer", field="limit") from None
        # Outside the try: the range check's InvalidParameter is a ValueError too.
        return check_limit(number)

    @property
    def cursor(self) -> str | None:
        """The cursor of the page asked for (None: the first page)."""
        return self.values.get("cursor")

    def url(self, base: str, **changes: str | None) -> str:
        """`base` with these parameters, some changed (None removes one)."""
        merged = {**self.values, **changes}
        query = urlencode({k: v for k, v in merged.items() if v is not None})
        return f"{base}?{query}" if query else base


@dataclass(frozen=True, slots=True)
class Timeline:
    """One page of the project's timeline and the links around it."""

    query: TimelineQuery
    page: Page
    base: str

    @property
    def next_url(self) -> str | None:
        """The next page (same filters), or None on the last page."""
        cursor = self.page.next_cursor
        return None if cursor is None else self.query.url(self.base, cursor=cursor)

    @property
    def first_url(self) -> str | None:
        """The first page (same filters), or None when this is the first page."""
        return None if self.query.cursor is None else self.query.url(self.base, cursor=None)

    @property
    def filtered(self) -> bool:
        """True when any filter is set."""
        return any(k in self.query.values for k in FILTER_PARAMS)


Outcome = Literal["requested", "suggestion_changed"]


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What a click on a strip's action button did, shown in that strip."""

    outcome: Outcome
    request: ActionRequest | None = None
    #: The version the user saw (for a stale click).
    seen: int | None = None


@dataclass(frozen=True, slots=True)
class Strip:
    """One coach stage's strip: its cached document, or None (the empty state)."""

    project_id: int
    stage: str
    doc: CoachDocument | None
    outcome: ActionOutcome | None = None

    @property
    def version(self) -> int:
        """The document's version (0 when there is none), what the live update compares."""
        return self.doc.version if self.doc else 0

    @property
    def severity(self) -> str | None:
        """The most severe suggestion's severity (the strip's colour), None when empty."""
        if self.doc is None or not self.doc.suggestions:
            return None
        return min((s.severity for s in self.doc.suggestions), key=SEVERITY_RANK.__getitem__)

    @property
    def trigger(self) -> str:
        """The htmx trigger that re-fetches the strip (an unchanged one answers 204)."""
        return f"sse:{coach_event(self.stage)}, sse:{RESYNC_EVENT}"

    @property
    def url(self) -> str:
        """The strip fragment's URL."""
        return f"/ui/projects/{self.project_id}/coach/{self.stage}"


def strips(
    project_id: int,
    docs: dict[str, CoachDocument] | None,
    outcomes: dict[str, ActionOutcome] | None = None,
) -> list[Strip]:
    """One strip per coach stage, in coach-stage order (with a click's outcome, if any)."""
    found, done = docs or {}, outcomes or {}
    return [Strip(project_id, s, found.get(s), done.get(s)) for s in COACH_STAGES]


def filter_choices(taxonomy: Taxonomy) -> dict[str, tuple[str, ...]]:
    """The values the filter form offers: what `project_filter` accepts (reason codes are a
    suggestion list only: the API takes any reason code)."""
    return {
        "stage": STAGES,
        "severity": ALL_SEVERITIES,
        "event_type": tuple(taxonomy.pulse_types),
        "reason": tuple(sorted(taxonomy.reason_codes)),
    }
