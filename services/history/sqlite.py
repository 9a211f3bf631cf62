"""The embedded backend: one SQLite file in WAL mode, driven from a worker thread.

The stdlib ``sqlite3`` module blocks, so every call runs in ``asyncio.to_thread`` on one
connection, serialised by a lock (one connection cannot run two transactions at once). A batch
is one ``executemany`` inside one transaction. Triggers refuse UPDATE and DELETE; the only
delete they let through is `prune`'s, gated by a cutoff row written in the same transaction.

One persister per file: `persister_lock` holds an exclusive ``flock`` on the sibling file
``<db>.persister.lock`` for the persister's lifetime, so a second persister on the same file is
refused (`HistoryInUse`) instead of contending for SQLite's single writer lock. Readers (API,
CLI) never take it. The kernel drops the lock with the process, even on SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from services.history import archive_sqlite, migrations
from services.history.base import (
    PARENT_PROBE,
    ArchivePruneResult,
    HistoryInUse,
    HistoryRow,
    Page,
    ProjectFilter,
    PruneResult,
    RunSpan,
    StoreRejected,
    StoreUnavailable,
    clamp_limit,
    decode_cursor,
    family_of,
)
from services.history.checkpoint import Checkpointer
from services.history.records import Record, records_of
from services.history.sqlite_rows import (
    COLUMNS,
    FILTERABLE,
    READ_COLUMNS,
    body_field,
    micros,
    now_micros,
    page_of_raw,
    rows_of,
    time_of,
)
from services.history.sqlite_rows import (
    params as row_params,
)
from services.history.sqlite_upgrade import STEPS
from shared.archive import ArchivedLetter, ArchiveRow, ArchiveSize, IdKey
from shared.models import ValidEnvelope

T = TypeVar("T")

_INSERT = (
    f"INSERT INTO history ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (event_id, ts) DO NOTHING"
)
_SELECT = f"SELECT {', '.join('h.' + c for c in READ_COLUMNS)} FROM history h"
_KEYSET = "(h.ts, h.id) > (?, ?) ORDER BY h.ts, h.id LIMIT ?"
# One run's span: first and last entry of history_run, and the first parent among its first
# rows (a bounded read: `PARENT_PROBE`).
_SPAN = (
    "SELECT (SELECT ts FROM history WHERE run_id = ?1 ORDER BY ts, id LIMIT 1), "
    "(SELECT ts FROM history WHERE run_id = ?1 ORDER BY ts DESC, id DESC LIMIT 1), "
    "(SELECT parent_run_id FROM (SELECT parent_run_id FROM history WHERE run_id = ?1 "
    "ORDER BY ts, id LIMIT ?2) WHERE parent_run_id IS NOT NULL LIMIT 1)"
)
_PRUNE = "DELETE FROM history WHERE ts < ?"
#: Before every stored time (a time is at least 1970, 0 µs).
_BEFORE_ALL = (-1, 0)
MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at TEXT NOT NULL "
    "DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')))"
)


def insert_params(records: Sequence[Record]) -> list[tuple[Any, ...]]:
    """What `insert_batch` binds for a batch's records: one tuple per row, for `INSERT_SQL`
    (the batch's insert time is now)."""
    return row_params(records, now_micros())


#: The statement `insert_batch` runs with ``executemany`` (the benchmark times it alone).
INSERT_SQL = _INSERT


def _classify(exc: sqlite3.Error) -> Exception:
    # OperationalError covers locked/busy, I/O and missing-schema errors: nothing about the
    # rows themselves, so retrying (after the operator fixes it) is right. The rest (triggers,
    # CHECK constraints, bad bindings) would fail the same way again.
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(f"sqlite: {exc}")
    return StoreRejected(f"sqlite: {exc}")


def _after(cursor: str | None) -> tuple[int, int]:
    if cursor is None:
        return _BEFORE_ALL
    ts, row_id = decode_cursor(cursor)
    return micros(ts), row_id


#: How long a connection waits for another's lock (busy timeout, and the WAL switch below).
CONNECT_TIMEOUT_S = 30.0


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the file.

    Two connections switching a new file at once (the persister and a reader starting
    together) can get "database is locked" at once: SQLite skips the busy handler there.
    """
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # a backoff in a worker thread, not a synchronisation


#: The persister's lock file is the database's path plus this.
LOCK_SUFFIX = ".persister.lock"


def lock_path(db: Path | str) -> Path:
    """The lock file of a database file: ``<db>.persister.lock`` beside it."""
    db = Path(db)
    return db.with_name(db.name + LOCK_SUFFIX)


@contextlib.contextmanager
def persister_lock(db: Path | str) -> Iterator[Path]:
    """Hold the one-persister lock of `db` (yields the lock file); `HistoryInUse` if held.

    ``flock`` locks belong to the open file, so a second persister in the same process is
    refused too. The file stays behind (unlinking it would let a newcomer lock a fresh inode
    while the holder keeps the old one); it holds the holder's pid, for the refusal message.
    """
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _in_use(db, path, os.pread(fd, 32, 0)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def _in_use(db: Path | str, path: Path, holder: bytes) -> HistoryInUse:
    pid = holder.decode(errors="replace").strip() or "unknown"
    return HistoryInUse(
        f"{HistoryInUse.code}: another persister (pid {pid}) writes {db} (it holds {path}); "
        "run one persister per SQLite file, or several on PostgreSQL"
    )


def connect(path: Path) -> sqlite3.Connection:
    """A connection as the store opens it (WAL, synchronous=NORMAL, autocommit mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=CONNECT_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    _switch_to_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    # Reads map the file instead of copying pages through read(): a run read touches
    # a thousand scattered pages.
    conn.execute("PRAGMA mmap_size=1073741824")
    return conn


class SqliteHistoryStore:
    """`HistoryStore` on a SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._checkpointer: Checkpointer | None = None

    # --- plumbing ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        async with self._lock:
            if self._conn is None:
                raise StoreUnavailable("store is not open")
            work = asyncio.ensure_future(asyncio.to_thread(fn, self._conn))
            try:
                return await asyncio.shield(work)
            except sqlite3.Error as exc:
                raise _classify(exc) from exc
            except asyncio.CancelledError:
                # The thread cannot be stopped: keep the connection locked until it is done,
                # or the next caller would start a transaction inside this one.
                await asyncio.wait([work])
                raise

    @staticmethod
    def _in_transaction(conn: sqlite3.Connection, fn: Callable[[], T]) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _wrote(self, conn: sqlite3.Connection) -> None:
        # In the worker thread, after a commit. The first write makes this store the file's
        # writer: its WAL checkpoints move out of its commits (`Checkpointer`); readers
        # (API, CLI) never write and start no thread.
        if self._checkpointer is None:
            Checkpointer.adopt(conn)
            self._checkpointer = Checkpointer(self._connect)
            self._checkpointer.start()
        self._checkpointer.touch()

    async def open(self) -> None:
        """Open the file (created when missing), WAL mode."""
        if self._conn is not None:
            return
        try:
            self._conn = await asyncio.to_thread(self._connect)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def close(self) -> None:
        """Close the connection."""
        async with self._lock:
            if self._checkpointer is not None:
                await asyncio.to_thread(self._checkpointer.close)
                self._checkpointer = None
            if self._conn is not None:
                await asyncio.to_thread(self._conn.close)
                self._conn = None

    async def ping(self) -> bool:
        """True when the file answers a query."""
        try:
            return await self._run(lambda c: c.execute("SELECT 1").fetchone() == (1,))
        except StoreUnavailable:
            return False

    # --- schema -------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply pending migrations, each in its own transaction."""
        return await self._run(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> list[int]:
        conn.execute(MIGRATIONS_TABLE)
        applied: list[int] = []
        conn.execute("BEGIN IMMEDIATE")  # one migrator at a time
        try:
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations.pending("sqlite", done):
                for sql, step in migrations.parts(migration.sql):
                    for statement in _statements(sql):
                        conn.execute(statement)
                    if step is not None:
                        STEPS[step](conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    (migration.version, migration.name),
                )
                applied.append(migration.version)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return applied

    # --- writes -------------------------------------------------------------------------

    async def insert_batch(self, envelopes: Sequence[ValidEnvelope]) -> int:
        """`insert_records` of the envelopes' records."""
        return await self.insert_records(records_of(envelopes))

    async def insert_records(self, records: Sequence[Record]) -> int:
        """Insert a batch in one transaction; rows newly inserted."""
        if not records:
            return 0
        params = insert_params(records)

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            self._in_transaction(conn, lambda: conn.executemany(_INSERT, params))
            self._wrote(conn)
            return conn.total_changes - before

        return await self._run(insert)

    async def prune(self, older_than: timedelta) -> PruneResult:
        """Delete rows older than now - `older_than` (through the trigger's gate)."""
        cutoff = datetime.now(UTC) - older_than
        value = micros(cutoff)

        def delete(conn: sqlite3.Connection) -> int:
            def work() -> int:
                conn.execute("INSERT INTO history_prune_gate (cutoff) VALUES (?)", (value,))
                deleted = conn.execute(_PRUNE, (value,)).rowcount
                conn.execute("DELETE FROM history_prune_gate")
                return int(deleted)

            deleted = self._in_transaction(conn, work)
            self._wrote(conn)
            return deleted

        return PruneResult(cutoff=cutoff, rows_deleted=await self._run(delete))

    # --- dead-letter archive (`shared.archive.DeadLetterArchive`) ------------------------

    async def archive_dead_letters(self, rows: Sequence[ArchiveRow]) -> int:
        """Archive dead letters in one transaction; how many were new."""
        if not rows:
            return 0

        def insert(conn: sqlite3.Connection) -> int:
            new = self._in_transaction(conn, lambda: archive_sqlite.insert(conn, rows))
            self._wrote(conn)
            return new

        return await self._run(insert)

    async def archived_dead_letters(self, keys: Sequence[tuple[str, str]]) -> list[ArchivedLetter]:
        """The archived letters of these ``(stream, entry_id)`` keys, in the order given."""
        if not keys:
            return []
        return await self._run(lambda conn: archive_sqlite.select(conn, keys))

    async def archived_after(
        self, stream: str, after: IdKey, until: IdKey, limit: int
    ) -> list[ArchivedLetter]:
        """Up to `limit` archived letters of `stream` with ids in (after, until], oldest first."""
        return await self._run(lambda c: archive_sqlite.after(c, stream, (after, until), limit))

    async def claim_redrives(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim the redrive of these archived letters; the keys claimed now."""
        if not keys:
            return set()

        def claim(conn: sqlite3.Connection) -> set[tuple[str, str]]:
            claimed = self._in_transaction(conn, lambda: archive_sqlite.claim(conn, keys))
            self._wrote(conn)
            return claimed

        return await self._run(claim)

    async def release_redrives(self, keys: Sequence[tuple[str, str]]) -> None:
        """Undo claims whose redrive failed."""
        if not keys:
            return

        def release(conn: sqlite3.Connection) -> None:
            self._in_transaction(conn, lambda: archive_sqlite.release(conn, keys))
            self._wrote(conn)

        await self._run(release)

    async def archive_size(self) -> ArchiveSize:
        """How much the archive holds."""
        return await self._run(archive_sqlite.size)

    async def prune_archive(self, older_than: timedelta) -> ArchivePruneResult:
        """Remove archived letters older than now - `older_than`, a chunk per transaction."""
        cutoff = datetime.now(UTC) - older_than
        before_ms = int(cutoff.timestamp() * 1000)

        def chunk(conn: sqlite3.Connection) -> int:
            removed = self._in_transaction(
                conn, lambda: archive_sqlite.prune_chunk(conn, before_ms)
            )
            self._wrote(conn)
            return removed

        total = 0
        while removed := await self._run(chunk):
            total += removed
        return ArchivePruneResult(cutoff=cutoff, letters_deleted=total)

    # --- reads --------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return await self._run(lambda c: c.execute(sql, params).fetchall())

    async def _select(self, sql: str, params: Sequence[Any]) -> list[HistoryRow]:
        return rows_of(await self._fetch(sql, params))

    async def run_timeline(
        self, run_id: str, *, children: bool = False, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        """The run's events (and its descendants' when `children`) in event-time order."""
        limit = clamp_limit(limit)
        after_ts, after_id = _after(cursor)
        runs = await family_of(run_id, self._children_of) if children else [run_id]
        if len(runs) == 1:
            sql = f"{_SELECT} WHERE h.run_id = ? AND {_KEYSET}"
            params: tuple[Any, ...] = (run_id, after_ts, after_id, limit + 1)
        else:
            # Page the keys on the covering (run_id, ts, id) index first, then fetch only
            # the rows of the page: a family of 10 runs reads 1000 rows, not 10,000.
            sql = (
                f"{_SELECT} JOIN (SELECT id FROM history WHERE run_id IN ({_marks(runs)}) "
                f"AND {_KEYSET.replace('h.', '')}) k ON h.id = k.id ORDER BY h.ts, h.id"
            )
            params = (*runs, after_ts, after_id, limit + 1)
        return page_of_raw(await self._fetch(sql, params), limit)

    async def _children_of(self, runs: list[str]) -> list[str]:
        # Plain parameters, not json_each(): SQLite's JSON functions mishandle \u0000.
        found: list[str] = []
        for start in range(0, len(runs), 500):
            chunk = runs[start : start + 500]
            sql = f"SELECT DISTINCT run_id FROM history WHERE parent_run_id IN ({_marks(chunk)})"
            found += [r[0] for r in await self._fetch(sql, chunk)]
        return found

    async def run_spans(self, run_ids: Sequence[str]) -> list[RunSpan]:
        """The span of each run that has events, in the order given (three index probes)."""

        def spans(conn: sqlite3.Connection) -> list[RunSpan]:
            out: list[RunSpan] = []
            for run_id in run_ids:
                first, last, parent = conn.execute(_SPAN, (run_id, PARENT_PROBE)).fetchone()
                if first is not None:
                    out.append(RunSpan(run_id, time_of(first), time_of(last), parent))
            return out

        return await self._run(spans)

    async def child_runs(self, run_id: str, limit: int) -> list[str]:
        """Up to `limit` distinct child runs of `run_id`, by run id (index only)."""
        sql = "SELECT DISTINCT run_id FROM history WHERE parent_run_id = ? ORDER BY run_id LIMIT ?"
        return [r[0] for r in await self._fetch(sql, (run_id, max(0, limit)))]

    async def events_by_id(self, event_ids: Sequence[str], limit: int = 20) -> list[HistoryRow]:
        """Stored events with any of these ids, in ``(ts, id)`` order (unique-key probes)."""
        if not event_ids:
            return []
        ids = list(event_ids)[:500]  # far below SQLite's parameter limit
        sql = f"{_SELECT} WHERE h.event_id IN ({_marks(ids)}) ORDER BY h.ts, h.id LIMIT ?"
        return await self._select(sql, [*ids, clamp_limit(limit)])

    async def project_timeline(
        self,
        project_id: int,
        filters: ProjectFilter | None = None,
        *,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A project's events in event-time order, filtered."""
        limit = clamp_limit(limit)
        where, params = _filter_sql(project_id, filters or ProjectFilter())
        after_ts, after_id = _after(cursor)
        sql = f"{_SELECT} WHERE {where} AND (h.ts, h.id) > (?, ?) ORDER BY h.ts, h.id LIMIT ?"
        return page_of_raw(await self._fetch(sql, [*params, after_ts, after_id, limit + 1]), limit)

    async def iter_events(self, project_id: int | None = None) -> AsyncIterator[HistoryRow]:
        """Every event (of one project, or all) in ``(ts, id)`` order, read in pages."""
        where = "h.project_id = ?" if project_id is not None else "1 = 1"
        base = [project_id] if project_id is not None else []
        sql = f"{_SELECT} WHERE {where} AND (h.ts, h.id) > (?, ?) ORDER BY h.ts, h.id LIMIT 2000"
        after: tuple[int, int] = _BEFORE_ALL
        while True:
            rows = await self._select(sql, [*base, *after])
            for row in rows:
                yield row
            if len(rows) < 2000:
                return
            after = (micros(rows[-1].ts), rows[-1].id)

    async def count(self) -> int:
        """Number of stored events."""
        value = await self._run(lambda c: c.execute("SELECT count(*) FROM history").fetchone())
        return int(value[0])


def _marks(values: Sequence[object]) -> str:
    """``?, ?, ...`` for an IN list (SQLite takes up to 32766 parameters)."""
    return ", ".join("?" * len(values))


def _filter_sql(project_id: int, f: ProjectFilter) -> tuple[str, list[Any]]:
    clauses = ["h.project_id = ?"]
    values: list[Any] = [project_id]
    for name in FILTERABLE:
        value = getattr(f, name)
        if value is not None:
            clauses.append(f"{body_field(name)} = ?")
            values.append(value)
    if f.since is not None:
        clauses.append("h.ts >= ?")
        values.append(micros(f.since))
    if f.until is not None:
        clauses.append("h.ts < ?")
        values.append(micros(f.until))
    return " AND ".join(clauses), values


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their BEGIN ... END body)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
