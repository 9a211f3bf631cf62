"""The PostgreSQL backend (asyncpg): monthly range partitions on event time, append-only.

- A batch is one transaction: binary COPY straight into the history; when that meets an event
  already stored (a unique violation rolls it back), binary COPY into a session-local staging
  table, then one ``INSERT ... SELECT ... ON CONFLICT (event_id, ts) DO NOTHING`` into the
  history. Any number of persisters may insert at once; a transaction PostgreSQL rolls back for
  a conflict between them (a deadlock) is run again at once.
- Partitions: `history_ensure_month` (SECURITY DEFINER, so the INSERT/SELECT-only service role
  may call it) creates ``history_pYYYYMM``; the store creates the months ahead on first use and
  the months a batch touches, caching the ones it knows.
- `prune` detaches and drops whole partitions; nothing ever deletes a row.
- The schema comes from the URL's ``?search_path=<schema>`` (default: the server's).
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson

from services.history import archive_postgres, migrations
from services.history.base import (
    PARENT_PROBE,
    ArchivePruneResult,
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
    page_of,
)
from services.history.records import COLUMNS, ROW_COLUMNS, Record, months_of, records_of
from shared.archive import ArchivedLetter, ArchiveRow, ArchiveSize, IdKey
from shared.models import TS_MIN, ValidEnvelope

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

T = TypeVar("T")
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

_STAGE_TYPES = {"project_id": "bigint", "ts": "timestamptz", "accepted_at": "timestamptz"}
_JSON_COLUMNS = frozenset({"payload", "details"})
# The batch is COPied (binary) into a per-session staging table, then moved with one
# INSERT ... SELECT ... ON CONFLICT DO NOTHING: about 15-20% faster than one INSERT over
# unnest() arrays, and the status line still says how many rows were new.
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS history_stage ("
    + ", ".join(f"{c} {_STAGE_TYPES.get(c, 'text')}" for c in COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_PROJECTION = ", ".join(f"{c}::json" if c in _JSON_COLUMNS else c for c in COLUMNS)
_INSERT = (
    f"INSERT INTO history ({', '.join(COLUMNS)}) SELECT {_PROJECTION} FROM history_stage "
    "ON CONFLICT (event_id, ts) DO NOTHING"
)
# A small batch (what a quiet bus reads: a few entries) is one statement over unnest() arrays
# instead: one round trip, atomic on its own, where the staged path takes five (BEGIN, CREATE,
# COPY, INSERT, COMMIT) and the latency at a low rate is mostly round trips.
SMALL_BATCH = 64
_ARRAYS = ", ".join(f"${i}::{_STAGE_TYPES.get(c, 'text')}[]" for i, c in enumerate(COLUMNS, 1))
_INSERT_UNNEST = (
    f"INSERT INTO history ({', '.join(COLUMNS)}) SELECT {_PROJECTION} "
    f"FROM unnest({_ARRAYS}) AS s({', '.join(COLUMNS)}) ON CONFLICT (event_id, ts) DO NOTHING"
)
_SELECT = f"SELECT {', '.join('h.' + c for c in ROW_COLUMNS)} FROM history h"
_AFTER = "(h.ts, h.id) > ($2, $3)"
_ORDER = "ORDER BY h.ts, h.id LIMIT $4"
_KEYSET = f"{_AFTER} {_ORDER}"
# Each run's span, in the order given: first and last entry of history_run, and the first
# parent among its first rows (a bounded read: `PARENT_PROBE`). Every subquery is an index
# probe, across the monthly partitions.
_SPANS = (
    "SELECT r.run_id, "
    "(SELECT ts FROM history WHERE run_id = r.run_id ORDER BY ts, id LIMIT 1), "
    "(SELECT ts FROM history WHERE run_id = r.run_id ORDER BY ts DESC, id DESC LIMIT 1), "
    "(SELECT p.parent_run_id FROM (SELECT parent_run_id FROM history WHERE run_id = r.run_id "
    "ORDER BY ts, id LIMIT $2) p WHERE p.parent_run_id IS NOT NULL LIMIT 1) "
    "FROM unnest($1::text[]) WITH ORDINALITY AS r(run_id, n) ORDER BY r.n"
)
_PARTITION = re.compile(r"^history_p(\d{4})(\d{2})$")
_MIGRATION_LOCK = 0x52554E42  # "RUNB": one migrator at a time per database
#: SQLSTATE classes meaning "this data is wrong": 22 data exception, 23 integrity violation.
_REJECT_CLASSES = ("22", "23")
_BEFORE_ALL = (TS_MIN - timedelta(days=1), 0)
#: Runs of a statement that can lose a race with another persister (a deadlock rolled back,
#: a partition created meanwhile) before the error goes to the caller.
RACE_ATTEMPTS = 5


def schema_of(url: str) -> str | None:
    """The schema named by a URL's ``search_path`` parameter (its first entry)."""
    values = parse_qs(urlsplit(url).query).get("search_path")
    if not values:
        return None
    first = values[0].split(",")[0].strip().strip('"')
    return first or None


def _classify(exc: BaseException) -> Exception:
    # Data errors fail the same way every time; anything else (connection lost, server
    # shutting down, missing table or privilege) is fixed outside the data, so retry.
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        if state[:2] in _REJECT_CLASSES:
            return StoreRejected(f"postgres {state}: {exc}")
        return StoreUnavailable(f"postgres {state}: {exc}")
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        return StoreRejected(f"postgres: {exc}")  # a value the client cannot encode
    return StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}")


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _json_bytes(value: Any) -> bytes:
    # A str is JSON text already (a record's payload, COPied into the json column as is);
    # anything else is a document to encode.
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


async def _init_connection(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    # json columns hold the JSON text verbatim; orjson decodes it (binary format = the text).
    await conn.set_type_codec(
        "json",
        schema="pg_catalog",
        encoder=_json_bytes,
        decoder=orjson.loads,
        format="binary",
    )


# --- NUL in text ----------------------------------------------------------------------------
# PostgreSQL text cannot hold NUL, which a valid run id, actor, summary or message may contain.
# Such a string (or one holding the mark itself) is stored as MARK + the string with MARK
# doubled and NUL written MARK + U+FDD1; every other string is stored unchanged. U+FDD0 is a
# Unicode noncharacter, so real text practically never pays for the escape; the mapping is
# lossless either way.
_MARK = "\ufdd0"
_NUL_CODE = "\ufdd1"
_UNESCAPE = re.compile(_MARK + "(.)", re.DOTALL)
#: Free-text columns that may carry NUL (the others are checked against the taxonomy).
ESCAPED = ("run_id", "parent_run_id", "actor", "summary", "message")


def pg_text(value: str | None) -> str | None:
    """A string as stored in a PostgreSQL text column."""
    if value is None or ("\x00" not in value and _MARK not in value):
        return value
    return _MARK + value.replace(_MARK, _MARK + _MARK).replace("\x00", _MARK + _NUL_CODE)


def py_text(value: str | None) -> str | None:
    """The string a PostgreSQL text column holds (inverse of `pg_text`)."""
    if value is None or not value.startswith(_MARK):
        return value
    return _UNESCAPE.sub(lambda m: "\x00" if m[1] == _NUL_CODE else m[1], value[1:])


def _escaped(record: Record) -> Record:
    changes: dict[str, Any] = {}
    for name in ESCAPED:
        text = getattr(record, name)
        if text is not None and ("\x00" in text or _MARK in text):
            changes[name] = pg_text(text)
    return record._replace(**changes) if changes else record


def escaped_records(records: Sequence[Record]) -> list[Record]:
    """A batch's records as `insert_batch` hands them to `stage_and_insert` (NUL escaped)."""
    return [_escaped(r) for r in records]


#: The statements `stage_and_insert` runs around its COPY (the benchmark's schema variants
#: replace the second one).
STAGE_SQL, INSERT_SQL = _STAGE, _INSERT


def _rows(records: list[asyncpg.Record]) -> list[HistoryRow]:
    """`HistoryRow`s of records selected by `_SELECT` (times and JSON columns come decoded)."""
    return _unescaped([HistoryRow(*r) for r in records])


_escaped_texts = operator.attrgetter(*ESCAPED)


def _unescaped(rows: list[HistoryRow]) -> list[HistoryRow]:
    """`rows` with their escaped text columns restored (`py_text`)."""
    # A stored text holds the mark only when `pg_text` escaped it: one search over the page's
    # texts tells whether any row needs a look.
    texts = filter(None, itertools.chain.from_iterable(map(_escaped_texts, rows)))
    if _MARK not in "".join(texts):
        return rows
    for row in rows:
        for name in ESCAPED:
            text = getattr(row, name)
            if text and text[0] == _MARK:
                setattr(row, name, py_text(text))
    return rows


class PostgresHistoryStore:
    """`HistoryStore` on PostgreSQL."""

    def __init__(self, url: str, *, months_ahead: int = 3, pool_size: int = 4) -> None:
        self.url = url
        self.schema = schema_of(url)
        self.months_ahead = months_ahead
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._known_months: set[date] = set()
        # False after a batch that held an event already stored: the next batch takes the
        # staged path at once (a redelivery comes in runs), until one is all new again.
        self._direct = True

    # --- plumbing ---------------------------------------------------------------------

    async def open(self) -> None:
        """Create the pool lazily: no connection is made until the first query."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=0,
                max_size=self.pool_size,
                init=_init_connection,
                command_timeout=60,
                max_inactive_connection_lifetime=300,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _classify(exc) from exc

    async def close(self) -> None:
        """Close every connection."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _with(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        try:
            async with self._pool.acquire(timeout=30) as conn:
                return await fn(conn)
        except (StoreRejected, StoreUnavailable):
            raise
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _classify(exc) from exc

    async def ping(self) -> bool:
        """True when the server answers."""
        try:
            return bool(await self._with(lambda c: c.fetchval("SELECT true")))
        except StoreUnavailable:
            return False

    # --- schema -------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply pending migrations (each in a transaction, under an advisory lock)."""
        applied = await self._with(self._migrate)
        await self.ensure_months(set())
        return applied

    async def _migrate(self, conn: Conn) -> list[int]:
        schema = self.schema or await conn.fetchval("SELECT current_schema()") or "public"
        if not await conn.fetchval("SELECT true FROM pg_namespace WHERE nspname = $1", schema):
            # Under the lock: persisters starting together would race even IF NOT EXISTS
            # (a unique violation on the catalog).
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        applied: list[int] = []
        for migration in migrations.migrations("postgres"):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(
                    "SELECT set_config('search_path', $1, true)", f"{_ident(schema)}, pg_temp"
                )
                if migration.version in await self._applied(conn):
                    continue
                if len(migrations.parts(migration.sql)) > 1:
                    raise RuntimeError(f"postgres migration {migration.version}: no data steps")
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                applied.append(migration.version)
        return applied

    @staticmethod
    async def _applied(conn: Conn) -> set[int]:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            await conn.execute(
                "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        return {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}

    async def ensure_months(self, months: set[date]) -> None:
        """Make sure the partitions of `months` (and of the months ahead) exist."""
        if not self._known_months:
            day = datetime.now(UTC).date().replace(day=1)
            for _ in range(self.months_ahead + 1):
                months.add(day)
                day = _next_month(day)
        missing = sorted(months - self._known_months)
        if not missing:
            return
        await self._with(lambda c: _ensure_months(c, missing))
        self._known_months.update(missing)

    # --- writes -------------------------------------------------------------------------

    async def insert_batch(self, envelopes: Sequence[ValidEnvelope]) -> int:
        """`insert_records` of the envelopes' records."""
        return await self.insert_records(records_of(envelopes))

    async def insert_records(self, records: Sequence[Record]) -> int:
        """Insert a batch with one statement (one transaction); rows newly inserted."""
        if not records:
            return 0
        await self.ensure_months({_month_start(y, m) for y, m in months_of(records)})
        escaped = escaped_records(records)
        direct = self._direct
        new, had_stored = await self._with(lambda c: copy_insert(c, escaped, direct=direct))
        self._direct = not had_stored
        return new

    async def prune(self, older_than: timedelta) -> PruneResult:
        """Detach and drop every monthly partition that ends before now - `older_than`."""
        cutoff = datetime.now(UTC) - older_than
        dropped, rows = await self._with(lambda c: self._drop_partitions(c, cutoff))
        self._known_months.clear()
        return PruneResult(cutoff=cutoff, rows_deleted=rows, partitions_dropped=dropped)

    async def _drop_partitions(self, conn: Conn, cutoff: datetime) -> tuple[list[str], int]:
        names = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'history'::regclass ORDER BY c.relname"
        )
        dropped: list[str] = []
        rows = 0
        for (name,) in names:
            match = _PARTITION.match(name)
            if not match:
                continue
            upper = _next_month(_month_start(int(match[1]), int(match[2])))
            if datetime(upper.year, upper.month, 1, tzinfo=UTC) > cutoff:
                continue
            async with conn.transaction():
                rows += int(await conn.fetchval(f"SELECT count(*) FROM {_ident(name)}"))
                await conn.execute(f"ALTER TABLE history DETACH PARTITION {_ident(name)}")
                await conn.execute(f"DROP TABLE {_ident(name)}")
            dropped.append(name)
        return dropped, rows

    async def grant_app_role(self, role: str) -> None:
        """Give `role` the service's least privilege: INSERT and SELECT, nothing else."""
        schema = self.schema or "public"
        statements = [
            f"GRANT USAGE ON SCHEMA {_ident(schema)} TO {_ident(role)}",
            f"GRANT SELECT, INSERT ON {_ident(schema)}.history TO {_ident(role)}",
            f"GRANT SELECT ON {_ident(schema)}.schema_migrations TO {_ident(role)}",
            f"GRANT USAGE ON SEQUENCE {_ident(schema)}.history_id_seq TO {_ident(role)}",
            f"GRANT SELECT, INSERT ON {_ident(schema)}.dead_letter_archive TO {_ident(role)}",
            f"GRANT SELECT, INSERT, DELETE ON {_ident(schema)}.dead_letter_redrives "
            f"TO {_ident(role)}",
            f"GRANT EXECUTE ON FUNCTION {_ident(schema)}.history_ensure_month(date) "
            f"TO {_ident(role)}",
        ]

        async def grant(conn: Conn) -> None:
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)

        await self._with(grant)

    # --- dead-letter archive (`shared.archive.DeadLetterArchive`) ------------------------

    async def archive_dead_letters(self, rows: Sequence[ArchiveRow]) -> int:
        """Archive dead letters with one statement; how many were new."""
        if not rows:
            return 0
        return await self._with(lambda c: archive_postgres.insert(c, rows))

    async def archived_dead_letters(self, keys: Sequence[tuple[str, str]]) -> list[ArchivedLetter]:
        """The archived letters of these ``(stream, entry_id)`` keys, in the order given."""
        if not keys:
            return []
        return await self._with(lambda c: archive_postgres.select(c, keys))

    async def archived_after(
        self, stream: str, after: IdKey, until: IdKey, limit: int
    ) -> list[ArchivedLetter]:
        """Up to `limit` archived letters of `stream` with ids in (after, until], oldest first."""
        return await self._with(lambda c: archive_postgres.after(c, stream, (after, until), limit))

    async def claim_redrives(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Claim the redrive of these archived letters; the keys claimed now."""
        if not keys:
            return set()
        return await self._with(lambda c: archive_postgres.claim(c, keys))

    async def release_redrives(self, keys: Sequence[tuple[str, str]]) -> None:
        """Undo claims whose redrive failed."""
        if keys:
            await self._with(lambda c: archive_postgres.release(c, keys))

    async def archive_size(self) -> ArchiveSize:
        """How much the archive holds."""
        return await self._with(archive_postgres.size)

    async def prune_archive(self, older_than: timedelta) -> ArchivePruneResult:
        """Remove archived letters older than now - `older_than`, a chunk per statement."""
        cutoff = datetime.now(UTC) - older_than
        before_ms = int(cutoff.timestamp() * 1000)
        total = 0
        while removed := await self._with(lambda c: archive_postgres.prune_chunk(c, before_ms)):
            total += removed
        return ArchivePruneResult(cutoff=cutoff, letters_deleted=total)

    # --- reads --------------------------------------------------------------------------

    async def _select(self, sql: str, *params: Any) -> list[HistoryRow]:
        return _rows(await self._with(lambda c: c.fetch(sql, *params)))

    async def run_timeline(
        self, run_id: str, *, children: bool = False, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        """The run's events (and its descendants' when `children`) in event-time order."""
        limit = clamp_limit(limit)
        after = decode_cursor(cursor) if cursor else _BEFORE_ALL
        runs = await family_of(run_id, self._children_of) if children else [run_id]
        if len(runs) == 1:
            sql = f"{_SELECT} WHERE h.run_id = $1 AND {_KEYSET}"
            return page_of(await self._select(sql, pg_text(run_id), *after, limit + 1), limit)
        # Page the keys on the (run_id, ts, id) index first, then fetch only that page's
        # rows: a family of 10 runs reads 1000 rows, not 10,000.
        sql = (
            f"{_SELECT} JOIN (SELECT run_id, ts, id FROM history "
            f"WHERE run_id = ANY($1::text[]) AND {_KEYSET.replace('h.', '')}) k "
            "ON h.run_id = k.run_id AND h.ts = k.ts AND h.id = k.id ORDER BY h.ts, h.id"
        )
        stored = [pg_text(r) for r in runs]
        return page_of(await self._select(sql, stored, *after, limit + 1), limit)

    async def _children_of(self, runs: list[str]) -> list[str]:
        sql = "SELECT DISTINCT run_id FROM history WHERE parent_run_id = ANY($1::text[])"
        stored = [pg_text(r) for r in runs]
        records = await self._with(lambda c: c.fetch(sql, stored))
        return [py_text(r[0]) or "" for r in records]

    async def run_spans(self, run_ids: Sequence[str]) -> list[RunSpan]:
        """The span of each run that has events, in the order given (index probes per run)."""
        if not run_ids:
            return []
        stored = [pg_text(r) for r in run_ids]
        records = await self._with(lambda c: c.fetch(_SPANS, stored, PARENT_PROBE))
        return [
            RunSpan(py_text(r[0]) or "", r[1], r[2], py_text(r[3]))
            for r in records
            if r[1] is not None
        ]

    async def child_runs(self, run_id: str, limit: int) -> list[str]:
        """Up to `limit` distinct child runs of `run_id`, by run id (index only)."""
        sql = (
            "SELECT DISTINCT run_id FROM history WHERE parent_run_id = $1 ORDER BY run_id LIMIT $2"
        )
        records = await self._with(lambda c: c.fetch(sql, pg_text(run_id), max(0, limit)))
        return [py_text(r[0]) or "" for r in records]

    async def events_by_id(self, event_ids: Sequence[str], limit: int = 20) -> list[HistoryRow]:
        """Stored events with any of these ids, in ``(ts, id)`` order (unique-key probes)."""
        if not event_ids:
            return []
        sql = f"{_SELECT} WHERE h.event_id = ANY($1::text[]) ORDER BY h.ts, h.id LIMIT $2"
        return await self._select(sql, list(event_ids)[:500], clamp_limit(limit))

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
        after = decode_cursor(cursor) if cursor else _BEFORE_ALL
        where, params = _filter_sql(filters or ProjectFilter(), first=5)
        sql = f"{_SELECT} WHERE h.project_id = $1 {where}AND {_AFTER} {_ORDER}"
        rows = await self._select(sql, project_id, *after, limit + 1, *params)
        return page_of(rows, limit)

    async def iter_events(self, project_id: int | None = None) -> AsyncIterator[HistoryRow]:
        """Every event (of one project, or all) in ``(ts, id)`` order, read in pages."""
        where = "h.project_id = $1" if project_id is not None else "$1::bigint IS NULL"
        sql = f"{_SELECT} WHERE {where} AND {_KEYSET}"
        after: tuple[datetime, int] = _BEFORE_ALL
        while True:
            rows = await self._select(sql, project_id, *after, 2000)
            for row in rows:
                yield row
            if len(rows) < 2000:
                return
            after = (rows[-1].ts, rows[-1].id)

    async def count(self) -> int:
        """Number of stored events."""
        return int(await self._with(lambda c: c.fetchval("SELECT count(*) FROM history")))


async def _ensure_months(conn: Conn, months: list[date]) -> None:
    """`history_ensure_month` for each month; run again when another session won a race.

    The function re-checks under an advisory lock, but a statement that waited there still
    has the catalog as it was when it began: it tries to create the partition another
    persister has just created (42P07). A new statement sees it.
    """
    attempt = 1
    while True:
        try:
            await conn.execute("SELECT history_ensure_month(m) FROM unnest($1::date[]) m", months)
            return
        except asyncpg.DuplicateTableError:
            if attempt >= RACE_ATTEMPTS:
                raise
            attempt += 1


async def copy_insert(
    conn: Conn | asyncpg.Connection[Any], records: list[Record], *, direct: bool
) -> tuple[int, bool]:
    """The batch in one transaction, run again at once when PostgreSQL rolls it back; the rows
    newly inserted, and whether the batch held an event already stored.

    `direct`: first try `copy_direct` (most batches hold only new events); a unique violation
    rolls it back and the staged path, which skips stored events, runs instead.

    Persisters inserting the same events in different orders (redeliveries, duplicates) can
    deadlock on the unique index; PostgreSQL ends that by rolling one back (SQLSTATE class 40),
    and the rerun finds those rows stored. Not an outage: no backoff, nothing logged.
    """
    attempt = 1
    while True:
        try:
            if len(records) <= SMALL_BATCH:
                new = await insert_unnested(conn, records)
                return new, new < len(records)
            if direct:
                try:
                    async with conn.transaction():
                        return await copy_direct(conn, records), False
                except asyncpg.UniqueViolationError:
                    direct = False
            async with conn.transaction():
                new = await stage_and_insert(conn, records)
            return new, new < len(records)
        except asyncpg.TransactionRollbackError:
            if attempt >= RACE_ATTEMPTS:
                raise  # then an outage to the caller: retried with backoff
            attempt += 1


async def copy_direct(conn: Conn | asyncpg.Connection[Any], records: list[Record]) -> int:
    """The batch straight into the history with binary COPY, in the caller's transaction: no
    staging table, no conflict handling, so a stored event fails it (``UniqueViolationError``)
    and nothing is written. 1.3-1.45 times the rate of `stage_and_insert`: COPY writes the
    heap in multi-row batches, where ``INSERT ... ON CONFLICT`` inserts row by row with a
    speculative insertion each. Returns the rows inserted (all of them)."""
    status = await conn.copy_records_to_table("history", records=records, columns=COLUMNS)
    return int(status.rsplit(" ", 1)[-1])


async def stage_and_insert(conn: Conn | asyncpg.Connection[Any], records: list[Record]) -> int:
    """The batch's statements, in the caller's transaction: stage (COPY), then move the new rows.

    Returns the rows newly inserted.
    """
    await conn.execute(_STAGE)
    await conn.copy_records_to_table("history_stage", records=records, columns=COLUMNS)
    status = await conn.execute(_INSERT)
    return int(status.rsplit(" ", 1)[-1])


async def insert_unnested(conn: Conn | asyncpg.Connection[Any], records: list[Record]) -> int:
    """A small batch in one statement (one column array per parameter); rows newly inserted."""
    columns = [list(column) for column in zip(*records, strict=True)]
    status = await conn.execute(_INSERT_UNNEST, *columns)
    return int(status.rsplit(" ", 1)[-1])


def _filter_sql(f: ProjectFilter, *, first: int) -> tuple[str, list[Any]]:
    """Extra ``AND`` clauses (numbered from ``$first``) and their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("stage", "=", f.stage),
        ("severity", "=", f.severity),
        ("reason_code", "=", f.reason_code),
        ("event_type", "=", f.event_type),
        ("ts", ">=", f.since),
        ("ts", "<", f.until),
    ):
        if value is not None:
            clauses.append(f"AND h.{column} {op} ${first + len(params)} ")
            params.append(value)
    return "".join(clauses), params


def _ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
