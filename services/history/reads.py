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
from shared.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``7d``, ``4w`` as a timedelta (ValueError otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration (like 90s, 15m, 2h, 7d, 4w): {text!r}")
    return timedelta(**{_UNITS[match[2].lower()]: float(match[1])})


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when naive) or a duration meaning "that long ago"."""
    if _DURATION.match(text):
        return (now or datetime.now(UTC)) - parse_duration(text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not an ISO time or a duration like 2h / 7d: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@asynccontextmanager
async def history_store(settings: Settings) -> AsyncIterator[HistoryStore]:
    """An opened store for reads (no migration), closed on exit."""
    store = open_store(settings)
    await store.open()
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
