"""The append-only run history: one interface (`HistoryStore`), two backends.

`open_store(settings)` picks the backend from ``settings.database_url``:
``sqlite:///path/to/file.db`` (embedded default) or ``postgresql://user@host/db`` (asyncpg;
``?search_path=<schema>`` selects the schema). Readers use `services.history.reads`.
"""

from __future__ import annotations

from services.history.base import (
    HistoryError,
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
    "HistoryError",
    "HistoryRow",
    "HistoryStore",
    "InvalidCursor",
    "Page",
    "ProjectFilter",
    "PruneResult",
    "StoreRejected",
    "StoreUnavailable",
    "open_store",
    "store_for_url",
]


def store_for_url(url: str, *, months_ahead: int = 3) -> HistoryStore:
    """A (not yet opened) store for a database URL."""
    if url.startswith("sqlite:///"):
        from services.history.sqlite import SqliteHistoryStore

        return SqliteHistoryStore(url.removeprefix("sqlite:///") or "history.db")
    if url.startswith(("postgresql://", "postgres://")):
        from services.history.postgres import PostgresHistoryStore

        return PostgresHistoryStore(url, months_ahead=months_ahead)
    # The message reaches logs (worker_failed): never the password.
    raise ValueError(f"unsupported database URL (sqlite:/// or postgresql://): {redact(url)!r}")


def open_store(settings: Settings) -> HistoryStore:
    """The store `settings.database_url` names (call `await store.open()` before use)."""
    return store_for_url(settings.database_url, months_ahead=settings.history_months_ahead)
