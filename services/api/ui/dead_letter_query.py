"""The dead-letter console's filter as the URL carries it, checked once by the library's rules.

The URL of ``/ui/dead-letters`` is the whole filter (``family``, ``code``, ``stage``, ``source``,
``since``, ``before``; repeatable where a listing takes several), so a filter can be bookmarked,
shared and reopened. The same `DeadLetterQuery` gives the library call of the listing (the one
``GET /api/dead-letters`` makes), the URL of the live tail, the hidden fields of a redrive or
purge form, and the check of each live record: the page, its tail and its writes always mean the
same dead letters. Families and codes are both reasons to the library (any may match).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query

from services.api.errors import invalid
from services.ops.durations import parse_duration
from services.ops.filters import (
    SOURCE_KINDS,
    STAGE_NAMES,
    check_source_filters,
    check_stage_filters,
)
from services.ops.logic import check_reason_filters, matches_reason
from services.ops.models import DeadLetterRecord
from services.ops.stream_ids import parse_dead_letter_id
from shared.names import Names
from shared.wire import entry_time

#: Longest value a filter field takes (a code with its detail is at most ~130 characters).
MAX_FIELD = 200
#: The stages and source roles the form offers (the library's own lists).
STAGES = STAGE_NAMES
SOURCES = tuple(kind.value for kind in SOURCE_KINDS)

Many = Annotated[list[Annotated[str, Query(max_length=MAX_FIELD)]] | None, Query()]
One = Annotated[str | None, Query(max_length=MAX_FIELD)]


def _given(values: list[str] | None) -> tuple[str, ...]:
    """The non-empty values of a repeatable field (an empty form field means "any")."""
    return tuple(v.strip() for v in values or () if v.strip())


def _duration(value: str | None, name: str) -> timedelta | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise invalid(f"{name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """One filter of the console: every condition must hold; within one, any value may."""

    families: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    #: Younger than this (as typed, e.g. ``15m``), and its value.
    since: str = ""
    #: Older than this (as typed), and its value.
    before: str = ""
    since_td: timedelta | None = field(default=None, compare=False)
    before_td: timedelta | None = field(default=None, compare=False)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Families and codes together: the library's reasons (any may match)."""
        return self.families + self.codes

    def is_empty(self) -> bool:
        """True when no condition is set (every dead letter)."""
        return not (self.reasons or self.stages or self.sources or self.since or self.before)

    def listing(self) -> dict[str, Any]:
        """The keyword arguments of `list_dead_letters` (and of ``GET /api/dead-letters``)."""
        return {
            "reasons": self.reasons,
            "stages": self.stages,
            "sources": self.sources,
            "since": self.since_td,
            "before": self.before_td,
        }

    def pairs(self) -> Iterator[tuple[str, str]]:
        """The URL's (name, value) pairs, empty conditions left out."""
        for name, values in (("family", self.families), ("code", self.codes),
                             ("stage", self.stages), ("source", self.sources)):  # fmt: skip
            yield from ((name, value) for value in values)
        for name, value in (("since", self.since), ("before", self.before)):
            if value:
                yield name, value

    def url_query(self, **extra: str | None) -> str:
        """The query string of this filter (plus `extra` parameters that are not None)."""
        pairs = [*self.pairs(), *((k, v) for k, v in extra.items() if v is not None)]
        return urlencode(pairs)

    def admits(self, record: DeadLetterRecord, names: Names, now: datetime) -> bool:
        """True when a dead letter (a live one, say) passes this filter at time `now`."""
        if not matches_reason(record.errors, self.reasons):
            return False
        if self.stages and record.stage not in self.stages:
            return False
        if self.sources and record.source_stream not in self._source_keys(names):
            return False
        age = now - entry_time(parse_dead_letter_id(record.id).entry)
        if self.since_td is not None and age > self.since_td:
            return False
        return self.before_td is None or age > self.before_td

    def _source_keys(self, names: Names) -> set[str]:
        return {key for kind in check_source_filters(self.sources) for key in names.streams(kind)}


def dead_letter_query(
    family: Many = None,
    code: Many = None,
    stage: Many = None,
    source: Many = None,
    since: One = None,
    before: One = None,
    reason: Many = None,
) -> DeadLetterQuery:
    """The filter of a request's URL (a dependency), each part checked by the library's rules
    (422 page: `invalid_reason_filter`, `invalid_stage_filter`, ..., `invalid_parameter`).

    ``reason`` (the JSON API's name, which other pages link with) is a family without a ``:``
    and a code with one; the page's own URLs then say ``family`` or ``code``.
    """
    reasons = _given(reason)
    families = _given(family) + tuple(r for r in reasons if ":" not in r)
    codes = _given(code) + tuple(r for r in reasons if ":" in r)
    check_reason_filters(families + codes)
    return DeadLetterQuery(
        families=families,
        codes=codes,
        stages=check_stage_filters(_given(stage)),
        sources=tuple(k.value for k in check_source_filters(_given(source))),
        since=(since or "").strip(),
        before=(before or "").strip(),
        since_td=_duration(since, "since"),
        before_td=_duration(before, "before"),
    )
