"""Where the lean baseline pipeline stores events: a 7-column table with one unique key.

The table is the least a user's own history would hold: the event id (the one key, so a
redelivered batch stores nothing twice), run, project, dialect, kind (BrewSLM stage or Pulse
event type), event time and the JSON body. SQLite in WAL mode with ``synchronous=NORMAL``,
``executemany`` of ``INSERT OR IGNORE``; PostgreSQL through asyncpg, ``executemany`` of
``INSERT ... ON CONFLICT DO NOTHING``. The table is named ``history`` so the benchmark's
readers (`bench.probes`) count its rows as they count runbus's.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import orjson

from services.history.postgres import schema_of

#: One stored event: (event_id, run_id, project_id, dialect, kind, ts as ISO text, body).
Row = tuple[str, str, int | None, str, str, str, str]

SQLITE_TABLE = """CREATE TABLE IF NOT EXISTS history (
    event_id TEXT NOT NULL UNIQUE, run_id TEXT NOT NULL, project_id INTEGER,
    dialect TEXT NOT NULL, kind TEXT NOT NULL, ts TEXT NOT NULL, body TEXT NOT NULL)"""
POSTGRES_TABLE = """CREATE TABLE IF NOT EXISTS history (
    event_id TEXT NOT NULL UNIQUE, run_id TEXT NOT NULL, project_id BIGINT,
    dialect TEXT NOT NULL, kind TEXT NOT NULL, ts TIMESTAMPTZ NOT NULL, body TEXT NOT NULL)"""
COLUMNS = "event_id, run_id, project_id, dialect, kind, ts, body"


def row_of(body: bytes) -> Row:
    """The table row of one valid event body (already validated: no checks here)."""
    doc: dict[str, Any] = orjson.loads(body)
    if doc.get("dialect") == "pulse":
        kind, ts = doc["event_type"], doc["created_at"]
    else:
        kind, ts = doc["stage"], doc["ts"]
    text = body.decode()
    return (doc["event_id"], doc["run_id"], doc.get("project_id"), doc["dialect"], kind, ts, text)


class Store(Protocol):
    """A table the persist stage writes batches of rows to."""

    def write(self, rows: list[Row]) -> None:
        """Store one batch (idempotent: rows already stored are skipped), committed on return."""

    def close(self) -> None:
        """Release the connection."""


class SqliteStore:
    """One SQLite connection, WAL, ``synchronous=NORMAL``."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(SQLITE_TABLE)

    def write(self, rows: list[Row]) -> None:
        """``executemany`` in one transaction."""
        self.conn.execute("BEGIN")
        self.conn.executemany(
            f"INSERT OR IGNORE INTO history ({COLUMNS}) VALUES (?,?,?,?,?,?,?)", rows
        )
        self.conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class PostgresStore:
    """One asyncpg connection, driven from this (synchronous) process by a private loop."""

    INSERT = (
        f"INSERT INTO history ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (event_id) DO NOTHING"
    )

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.conn: asyncpg.Connection[asyncpg.Record] = self.runner.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> asyncpg.Connection[asyncpg.Record]:
        schema = schema_of(url) or "public"
        conn = await asyncpg.connect(url.split("?", 1)[0], server_settings={"search_path": schema})
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(POSTGRES_TABLE)
        return conn

    def write(self, rows: list[Row]) -> None:
        """One ``executemany`` (atomic: asyncpg wraps it in a transaction).

        asyncpg wants datetimes for a TIMESTAMPTZ parameter: the one conversion done here.
        """
        typed = [(*r[:5], datetime.fromisoformat(r[5]), r[6]) for r in rows]
        self.runner.run(self.conn.executemany(self.INSERT, typed))

    def close(self) -> None:
        """Close the connection and the loop."""
        self.runner.run(self.conn.close())
        self.runner.close()


def open_store(url: str) -> Store:
    """The store at a database URL (``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    return PostgresStore(url)
