"""The SQLite 0001 row layout, frozen: what migration 0002 reads, and the benchmark's reference.

In 0001 every record field was a column and times were fixed-width UTC text. Nothing writes
this layout any more except `create` + `params` (the benchmark's "today" and the upgrade's
tests), so it is kept here exactly as the store wrote it before 0002.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from services.history import migrations
from services.history.records import Record

#: The 0001 table's insert columns, in record order (id and created_at came from SQLite).
COLUMNS: Final = (
    "event_id", "dialect", "project_id", "run_id", "parent_run_id", "stage", "severity",
    "reason_code", "actor", "summary", "payload", "event_type", "message", "details", "ts",
    "accepted_at", "taxonomy_version", "source_id",
)  # fmt: skip
#: Every column of the 0001 table, in its order.
TABLE_COLUMNS: Final = ("id", *COLUMNS[:15], "created_at", *COLUMNS[15:])
#: The 0001 insert.
INSERT_SQL: Final = (
    f"INSERT INTO history ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (event_id, ts) DO NOTHING"
)
_TS = COLUMNS.index("ts")


def ts_text(value: datetime) -> str:
    """Fixed-width UTC text of a time (0001's time columns): text order is time order."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def params(records: Sequence[Record]) -> list[tuple[Any, ...]]:
    """What the 0001 store bound for a batch (`COLUMNS` order), its accept-time cache too."""
    accepted: dict[datetime, str] = {}
    out: list[tuple[Any, ...]] = []
    for r in records:
        text = accepted.get(r.accepted_at)
        if text is None:
            text = accepted[r.accepted_at] = ts_text(r.accepted_at)
        out.append((*r[:_TS], ts_text(r.ts), text, *r[_TS + 2 :]))
    return out


def create(conn: sqlite3.Connection) -> None:
    """Migration 0001 alone on an empty database, recorded as the store records it."""
    from services.history.sqlite import MIGRATIONS_TABLE  # the store imports this module

    first = migrations.migrations("sqlite")[0]
    conn.executescript(first.sql)
    conn.execute(MIGRATIONS_TABLE)
    conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (first.version, first.name)
    )
