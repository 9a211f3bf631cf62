"""The dead-letter archive on PostgreSQL (`shared.archive.DeadLetterArchive`): statements of
one pooled connection, run by `PostgresHistoryStore` like every other query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from shared.archive import ArchivedLetter, ArchiveRow, ArchiveSize, IdKey, fields_of

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

# One statement over unnest() arrays: a sweep's chunk is one round trip, atomic on its own.
_TYPES = (
    ("stream", "text"), ("entry_id", "text"), ("ms", "bigint"), ("seq", "bigint"),
    ("errors", "text"), ("stage", "text"), ("source_stream", "text"), ("source_id", "text"),
    ("first_seen", "text"), ("dead_at", "timestamptz"), ("original", "bytea"),
    ("other", "bytea"), ("size", "bigint"),
)  # fmt: skip
_COLUMNS = tuple(name for name, _ in _TYPES)
_ARRAYS = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(_TYPES, 1))
_PROJECTION = ", ".join("errors::jsonb" if c == "errors" else c for c in _COLUMNS)
_INSERT = (
    f"INSERT INTO dead_letter_archive ({', '.join(_COLUMNS)}) SELECT {_PROJECTION} "
    f"FROM unnest({_ARRAYS}) AS s({', '.join(_COLUMNS)}) "
    "ON CONFLICT (stream, entry_id) DO NOTHING"
)
_SELECT = (
    "SELECT a.stream, a.entry_id, a.original, a.other, a.archived_at, r.stream IS NOT NULL "
    "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(stream, entry_id, n) "
    "JOIN dead_letter_archive a ON a.stream = k.stream AND a.entry_id = k.entry_id "
    "LEFT JOIN dead_letter_redrives r ON r.stream = a.stream AND r.entry_id = a.entry_id "
    "ORDER BY k.n"
)
_AFTER = (
    "SELECT a.stream, a.entry_id, a.original, a.other, a.archived_at, r.stream IS NOT NULL "
    "FROM dead_letter_archive a LEFT JOIN dead_letter_redrives r "
    "ON r.stream = a.stream AND r.entry_id = a.entry_id "
    "WHERE a.stream = $1 AND (a.ms, a.seq) > ($2, $3) AND (a.ms, a.seq) <= ($4, $5) "
    "ORDER BY a.ms, a.seq LIMIT $6"
)
_CLAIM = (
    "INSERT INTO dead_letter_redrives (stream, entry_id) "
    "SELECT * FROM unnest($1::text[], $2::text[]) "
    "ON CONFLICT (stream, entry_id) DO NOTHING RETURNING stream, entry_id"
)
_SIZE = (
    "SELECT count(*), coalesce(sum(size), 0), min(ms), "
    "(SELECT count(*) FROM dead_letter_redrives r JOIN dead_letter_archive a "
    "ON a.stream = r.stream AND a.entry_id = r.entry_id) FROM dead_letter_archive"
)


async def insert(conn: Conn, rows: Sequence[ArchiveRow]) -> int:
    """Archive `rows` with one statement; how many were new."""
    columns: list[list[Any]] = [[getattr(r, c) for r in rows] for c in _COLUMNS]
    status = await conn.execute(_INSERT, *columns)
    return int(status.rsplit(" ", 1)[-1])


def _split(keys: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [s for s, _ in keys], [e for _, e in keys]


def _letter(r: Any) -> ArchivedLetter:
    return ArchivedLetter(r[0], r[1], fields_of(bytes(r[2]), bytes(r[3])), r[4], bool(r[5]))


async def select(conn: Conn, keys: Sequence[tuple[str, str]]) -> list[ArchivedLetter]:
    """The archived letters of `keys`, in the order given."""
    return [_letter(r) for r in await conn.fetch(_SELECT, *_split(keys))]


async def after(
    conn: Conn, stream: str, bounds: tuple[IdKey, IdKey], limit: int
) -> list[ArchivedLetter]:
    """Up to `limit` letters of `stream` with ids in (after, until], oldest first."""
    (after_ms, after_seq), (until_ms, until_seq) = bounds
    records = await conn.fetch(_AFTER, stream, after_ms, after_seq, until_ms, until_seq, limit)
    return [_letter(r) for r in records]


async def claim(conn: Conn, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Claim redrives; the keys claimed now."""
    return {(r[0], r[1]) for r in await conn.fetch(_CLAIM, *_split(keys))}


async def release(conn: Conn, keys: Sequence[tuple[str, str]]) -> None:
    """Drop claims."""
    await conn.execute(
        "DELETE FROM dead_letter_redrives r USING unnest($1::text[], $2::text[]) AS k(s, e) "
        "WHERE r.stream = k.s AND r.entry_id = k.e",
        *_split(keys),
    )


async def size(conn: Conn) -> ArchiveSize:
    """Entries, bytes, the oldest, and how many were redriven."""
    row = await conn.fetchrow(_SIZE)
    assert row is not None  # an aggregate returns one row
    entries, total, oldest, redriven = row
    return ArchiveSize(int(entries), int(total), oldest, int(redriven))


#: Archived letters removed per statement of a prune (each its own transaction).
PRUNE_CHUNK = 5000
_PRUNE = (
    "WITH doomed AS (SELECT stream, entry_id FROM dead_letter_archive WHERE ms < $1 "
    "ORDER BY ms, seq LIMIT $2), "
    "claims AS (DELETE FROM dead_letter_redrives r USING doomed d "
    "WHERE r.stream = d.stream AND r.entry_id = d.entry_id) "
    "DELETE FROM dead_letter_archive a USING doomed d "
    "WHERE a.stream = d.stream AND a.entry_id = d.entry_id"
)


async def prune_chunk(conn: Conn, before_ms: int) -> int:
    """Remove up to `PRUNE_CHUNK` of the oldest letters dead-lettered before `before_ms`,
    with their redrive claims; how many."""
    status = await conn.execute(_PRUNE, before_ms, PRUNE_CHUNK)
    return int(status.rsplit(" ", 1)[-1])
