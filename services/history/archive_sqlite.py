"""The dead-letter archive on SQLite (`shared.archive.DeadLetterArchive`): functions of one
connection, run by `SqliteHistoryStore` in its worker thread like every other statement.

Times are stored as the history stores them (`services.history.sqlite_rows`): integer
microseconds since the epoch, archive and redrive times from the writer's clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from services.history.sqlite_rows import micros, now_micros, time_of
from shared.archive import ArchivedLetter, ArchiveRow, ArchiveSize, IdKey, fields_of

_COLUMNS = (
    "stream", "entry_id", "ms", "seq", "errors", "stage", "source_stream", "source_id",
    "first_seen", "dead_at", "original", "other", "size", "archived_at",
)  # fmt: skip
_INSERT = (
    f"INSERT INTO dead_letter_archive ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (stream, entry_id) DO NOTHING"
)
_SELECT = (
    "SELECT a.stream, a.entry_id, a.original, a.other, a.archived_at, r.stream IS NOT NULL "
    "FROM dead_letter_archive a LEFT JOIN dead_letter_redrives r "
    "ON r.stream = a.stream AND r.entry_id = a.entry_id "
    "WHERE a.stream = ? AND a.entry_id = ?"
)
_AFTER = (
    "SELECT a.stream, a.entry_id, a.original, a.other, a.archived_at, r.stream IS NOT NULL "
    "FROM dead_letter_archive a LEFT JOIN dead_letter_redrives r "
    "ON r.stream = a.stream AND r.entry_id = a.entry_id "
    "WHERE a.stream = ? AND (a.ms, a.seq) > (?, ?) AND (a.ms, a.seq) <= (?, ?) "
    "ORDER BY a.ms, a.seq LIMIT ?"
)
_CLAIM = (
    "INSERT INTO dead_letter_redrives (stream, entry_id, redriven_at) SELECT ?, ?, ? "
    "ON CONFLICT (stream, entry_id) DO NOTHING"
)
_SIZE = (
    "SELECT count(*), coalesce(sum(size), 0), min(ms), "
    "(SELECT count(*) FROM dead_letter_redrives r JOIN dead_letter_archive a "
    "ON a.stream = r.stream AND a.entry_id = r.entry_id) FROM dead_letter_archive"
)


_DEAD_AT = _COLUMNS.index("dead_at")


def _params(row: ArchiveRow, archived_at: int) -> tuple[object, ...]:
    values = [getattr(row, c) for c in _COLUMNS[:-1]]
    values[_DEAD_AT] = micros(row.dead_at)
    return (*values, archived_at)


def insert(conn: sqlite3.Connection, rows: Sequence[ArchiveRow]) -> int:
    """Insert in the caller's transaction (archived now); rows newly archived."""
    before = conn.total_changes
    now = now_micros()
    conn.executemany(_INSERT, [_params(r, now) for r in rows])
    return conn.total_changes - before


def _letter(row: tuple[Any, ...]) -> ArchivedLetter:
    stream, entry_id, original, other, archived_at, redriven = row
    fields = fields_of(bytes(original), bytes(other))
    return ArchivedLetter(stream, entry_id, fields, time_of(archived_at), bool(redriven))


def select(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> list[ArchivedLetter]:
    """The archived letters of `keys`, in the order given (one primary-key probe each)."""
    rows = (conn.execute(_SELECT, key).fetchone() for key in keys)
    return [_letter(row) for row in rows if row is not None]


def after(
    conn: sqlite3.Connection, stream: str, bounds: tuple[IdKey, IdKey], limit: int
) -> list[ArchivedLetter]:
    """Up to `limit` letters of `stream` with ids in (after, until], oldest first."""
    (after_ms, after_seq), (until_ms, until_seq) = bounds
    params = (stream, after_ms, after_seq, until_ms, until_seq, limit)
    return [_letter(row) for row in conn.execute(_AFTER, params).fetchall()]


def claim(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Claim redrives in the caller's transaction; the keys claimed now."""
    claimed: set[tuple[str, str]] = set()
    now = now_micros()
    for key in keys:
        if conn.execute(_CLAIM, (*key, now)).rowcount == 1:
            claimed.add(key)
    return claimed


def release(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Drop claims in the caller's transaction."""
    conn.executemany("DELETE FROM dead_letter_redrives WHERE stream = ? AND entry_id = ?", keys)


def size(conn: sqlite3.Connection) -> ArchiveSize:
    """Entries, bytes, the oldest, and how many were redriven."""
    entries, total, oldest, redriven = conn.execute(_SIZE).fetchone()
    return ArchiveSize(int(entries), int(total), oldest, int(redriven))


#: Archived letters removed per transaction of a prune.
PRUNE_CHUNK = 5000
_DOOMED = "SELECT stream, entry_id FROM dead_letter_archive WHERE ms < ? ORDER BY ms, seq LIMIT ?"


def prune_chunk(conn: sqlite3.Connection, before_ms: int) -> int:
    """Remove, in the caller's transaction, up to `PRUNE_CHUNK` of the oldest letters
    dead-lettered before `before_ms`, with their redrive claims; how many."""
    keys = conn.execute(_DOOMED, (before_ms, PRUNE_CHUNK)).fetchall()
    conn.executemany("DELETE FROM dead_letter_redrives WHERE stream = ? AND entry_id = ?", keys)
    conn.executemany("DELETE FROM dead_letter_archive WHERE stream = ? AND entry_id = ?", keys)
    return len(keys)
