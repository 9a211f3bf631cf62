"""The run-detail reads, as a library: what the CLI and the HTTP API both serve.

Readers never touch the table: they call these functions (or the store's read methods), which
return `Page`s in event-time order with an opaque cursor for the next page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from services.history import open_store
from services.history.base import HistoryRow, HistoryStore, Page, ProjectFilter
from services.history.family import CHILDREN_PAGE, RunFamily, run_family
from shared.settings import Settings

#: An age: one number and unit, either case ([0-9], not \d, which takes other scripts' digits).
AGE_PATTERN = r"^ *([0-9]+(?:\.[0-9]+)?) *([sSmMhHdDwW]) *$"
_DURATION = re.compile(AGE_PATTERN)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``7d``, ``4w`` as a timedelta (ValueError otherwise)."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"not a duration (like 90s, 15m, 2h, 7d, 4w): {text!r}")
    return timedelta(**{_UNITS[match[2].lower()]: float(match[1])})


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when naive) or a duration meaning "that long ago", in UTC.

    Times beyond what a datetime holds (``99999999w`` ago, year 1 at +05:00) are clamped to
    the first or last representable instant: they select everything or nothing, never crash.
    """
    if _DURATION.fullmatch(text):
        try:
            return (now or datetime.now(UTC)) - parse_duration(text)
        except OverflowError:
            return _EARLIEST
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO time or a duration like 2h / 7d: {text!r}") from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        offset = value.utcoffset()
        return _EARLIEST if offset is not None and offset > timedelta(0) else _LATEST


@asynccontextmanager
async def history_store(settings: Settings) -> AsyncIterator[HistoryStore]:
    """An opened store for reads, closed on exit; migrated when ``migrate_on_start`` is set,
    as the API does, so a history nothing has written yet reads as empty, not as broken."""
    store = open_store(settings)
    await store.open()
    if settings.migrate_on_start:
        await store.migrate()
    try:
        yield store
    finally:
        await store.close()


async def run_events(
    store: HistoryStore,
    run_id: str,
    *,
    children: bool = False,
    cursor: str | None = None,
    limit: int = 1000,
) -> Page:
    """One page of a run's timeline (``GET /api/runs/{run_id}/events``)."""
    return await store.run_timeline(run_id, children=children, cursor=cursor, limit=limit)


async def project_events(
    store: HistoryStore,
    project_id: int,
    filters: ProjectFilter | None = None,
    *,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """One page of a project's timeline (``GET /api/projects/{id}/events``)."""
    return await store.project_timeline(project_id, filters, cursor=cursor, limit=limit)


class NotFound(LookupError):
    """A run or project without any event: `kind` is ``run`` or ``project``."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"no {kind} {ident!s}")
        self.kind = kind
        self.ident = ident

    @property
    def code(self) -> str:
        """The stable error code: ``run_not_found``, ``project_not_found``."""
        return f"{self.kind}_not_found"


async def read_run(
    store: HistoryStore,
    run_id: str,
    *,
    children: bool = False,
    cursor: str | None = None,
    limit: int | None = 1000,
) -> Page:
    """A page of a run's timeline (the whole run when `limit` is None); `NotFound` when the
    run has no event. What the CLI and the API both read."""
    if limit is None and cursor is None:
        page = Page(await whole_run(store, run_id, children=children))
    else:
        page = await run_events(
            store, run_id, children=children, cursor=cursor, limit=limit or 1000
        )
    if not page and cursor is None:
        raise NotFound("run", run_id)
    return page


async def read_project(
    store: HistoryStore,
    project_id: int,
    filters: ProjectFilter | None,
    *,
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """A page of a project's timeline; `NotFound` when the project has no event at all (a
    filter matching nothing is an empty page)."""
    page = await project_events(store, project_id, filters, cursor=cursor, limit=limit)
    if not page and cursor is None:
        known = await project_events(store, project_id, None, limit=1)
        if not known:
            raise NotFound("project", project_id)
    return page


async def read_family(
    store: HistoryStore, run_id: str, *, children_limit: int = CHILDREN_PAGE
) -> RunFamily:
    """A run's ancestors and direct children (``GET /api/runs/{run_id}/family``, ``runbus
    history family``); `NotFound` when the run has no event. Index reads only
    (`services.history.family`)."""
    family = await run_family(store, run_id, children_limit=children_limit)
    if family is None:
        raise NotFound("run", run_id)
    return family


async def whole_run(
    store: HistoryStore, run_id: str, *, children: bool = False
) -> list[HistoryRow]:
    """Every event of a run (and its descendants), following the cursor to the end."""
    rows: list[HistoryRow] = []
    cursor: str | None = None
    while True:
        page = await store.run_timeline(run_id, children=children, cursor=cursor, limit=5000)
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor
