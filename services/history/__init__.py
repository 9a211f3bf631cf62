"""The append-only run history: one interface (`HistoryStore`), two backends.

`open_store(settings)` picks the backend from ``settings.database_url``:
``sqlite:///path/to/file.db`` (embedded default) or ``postgresql://user@host/db`` (asyncpg;
``?search_path=<schema>`` selects the schema). Readers use `services.history.reads`.
The persister holds `sole_writer` while it runs: one persister per SQLite file; PostgreSQL
takes any number of them.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path

from services.history.base import (
    ArchivePruneResult,
    HistoryError,
    HistoryInUse,
    HistoryRow,
    HistoryStore,
    InvalidCursor,
    Page,
    ProjectFilter,
    PruneResult,
    StoreRejected,
    StoreUnavailable,
)
from shared.connections import redact
from shared.settings import Settings

__all__ = [
    "ArchivePruneResult",
    "HistoryError",
    "HistoryInUse",
    "HistoryRow",
    "HistoryStore",
    "InvalidCursor",
    "Page",
    "ProjectFilter",
    "PruneResult",
    "StoreRejected",
    "StoreUnavailable",
    "open_reader",
    "open_store",
    "sole_writer",
    "store_for_url",
]

_SQLITE = "sqlite:///"


def _sqlite_path(url: str) -> str:
    return url.removeprefix(_SQLITE) or "history.db"


def store_for_url(url: str, *, months_ahead: int = 3) -> HistoryStore:
    """A (not yet opened) store for a database URL."""
    if url.startswith(_SQLITE):
        from services.history.sqlite import SqliteHistoryStore

        return SqliteHistoryStore(_sqlite_path(url))
    if url.startswith(("postgresql://", "postgres://")):
        from services.history.postgres import PostgresHistoryStore

        return PostgresHistoryStore(url, months_ahead=months_ahead)
    # The message reaches logs (worker_failed): never the password.
    raise ValueError(f"unsupported database URL (sqlite:/// or postgresql://): {redact(url)!r}")


def open_store(settings: Settings) -> HistoryStore:
    """The store `settings.database_url` names (call `await store.open()` before use)."""
    return store_for_url(settings.database_url, months_ahead=settings.history_months_ahead)


async def open_reader(settings: Settings) -> HistoryStore | None:
    """The store, opened for reading (no migration); None when it is a SQLite file that does
    not exist yet (a reader never creates one: there is nothing to read in it)."""
    url = settings.database_url
    if url.startswith(_SQLITE):
        path = _sqlite_path(url)
        if path != ":memory:" and not Path(path).exists():
            return None
    store = open_store(settings)
    await store.open()
    return store


def sole_writer(url: str) -> AbstractContextManager[object]:
    """What a persister holds while it writes the history at `url`.

    SQLite: the file's exclusive persister lock (`HistoryInUse` when another persister holds
    it); PostgreSQL: nothing, as concurrent persisters are safe there (idempotent inserts).
    """
    path = _sqlite_path(url) if url.startswith(_SQLITE) else None
    if path is None or path == ":memory:":
        return contextlib.nullcontext()
    from services.history.sqlite import persister_lock

    return persister_lock(path)
