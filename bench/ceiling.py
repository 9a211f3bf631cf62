"""The history store's own ceiling: ready rows inserted into the real schema, and nothing else.

The rows are the benchmark's workload (`bench.events`), turned into history records exactly as
the persister turns them (`records_of`, then the store's own parameter step) before the clock
starts; only the inserts and commits are timed, in batches of 1000 (the persister's batch),
into a fresh file or schema made by the real migrations:

- SQLite: one connection opened as the store opens it (WAL, synchronous=NORMAL), each batch one
  ``BEGIN IMMEDIATE`` + ``executemany`` of the store's statement + ``COMMIT``.
- PostgreSQL: one connection, each batch the store's own `copy_insert` (binary COPY straight
  into the partitioned table; the staged ``INSERT ... ON CONFLICT DO NOTHING`` when a batch
  holds a stored event, which these fresh rows never do).

Beside it, in the same run and batch by batch in turn (so the machine's other load falls on
both alike), today's reference: the schema of migration 0001 alone with the insert the store
did before 0002 (SQLite: `services.history.sqlite_v1`, 18 values a row, text times;
PostgreSQL: the staged insert). ``ceiling_vs_today_<backend>`` is the ratio of the two.

Diagnostics on the same backends: the same rows into a lean 7-column table with one unique key
(what the schema itself costs), and into throwaway copies of the schema with one thing removed
each (`bench.ceiling_sql.VARIANTS`), the whole copy measured first and last for the noise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import asyncpg
import orjson

from bench import ceiling_sql as sql
from bench.env import Workspace, migrate_history
from bench.events import body, event_id
from bench.plan import Plan
from bench.stats import rate, rounded, summary_ms
from services.history import migrations
from services.history.postgres import (
    INSERT_SQL as PG_INSERT,
)
from services.history.postgres import (
    STAGE_SQL as PG_STAGE,
)
from services.history.postgres import (
    copy_insert,
    escaped_records,
    schema_of,
    stage_and_insert,
)
from services.history.records import COLUMNS, Record, records_of
from services.history.sqlite import INSERT_SQL, connect, insert_params
from services.history.sqlite_v1 import INSERT_SQL as V1_INSERT_SQL
from services.history.sqlite_v1 import create as create_v1
from services.history.sqlite_v1 import params as v1_params
from services.history.sqlite_v1 import ts_text
from shared.models import ValidEnvelope

#: Rows per insert: the persister's batch (``batch_size``).
BATCH = 1000
#: Event times 50 µs apart: rows arrive in time order, as they do at 20k ev/s.
_TS_STEP = timedelta(microseconds=50)

T = TypeVar("T")
PgConn: TypeAlias = "asyncpg.Connection[Any]"
PgInsert: TypeAlias = Callable[[PgConn, list[Any]], Awaitable[int]]


@dataclass(frozen=True)
class Rows:
    """The workload: valid-stream envelopes, their history records, each event's JSON text."""

    envelopes: list[ValidEnvelope]
    records: list[Record]
    bodies: list[str]


def prepare(count: int, prefix: str = "c-") -> Rows:
    """`count` workload events as the persister's records (accept times shared per batch)."""
    base = datetime.now(UTC)
    envelopes: list[ValidEnvelope] = []
    for seq in range(count):
        data = body(seq, prefix, (base + seq * _TS_STEP).isoformat())
        event = orjson.loads(data)
        envelopes.append(
            ValidEnvelope(
                event_id=event_id(prefix, seq),
                dialect=event["dialect"],
                taxonomy_version="bench",
                accepted_at=base + timedelta(milliseconds=seq // BATCH),
                source_id=f"{int(base.timestamp() * 1000) + seq // BATCH}-{seq % BATCH}",
                event=event,
            )
        )
    bodies = [orjson.dumps(e.event).decode() for e in envelopes]
    return Rows(envelopes, records_of(envelopes), bodies)


def batches(items: Sequence[T], size: int = BATCH) -> list[list[T]]:
    """`items` in consecutive batches of `size` (the last one may be shorter)."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def timing(spent: Sequence[float], rows: int) -> dict[str, Any]:
    """Rows per second over the summed insert time, and the batch time's p50/p99."""
    total = sum(spent)
    ms = summary_ms(spent)
    return {
        "rows": rows,
        "seconds": rounded(total, 3),
        "rows_s": rounded(rate(rows, total), 0),
        "batch_p50_ms": ms["p50_ms"],
        "batch_p99_ms": ms["p99_ms"],
    }


def per_row_us(seconds: float, rows: int) -> float | None:
    """Microseconds per row (the persister's own work before the insert, untimed above)."""
    return rounded(seconds / rows * 1e6, 2) if rows else None


def lean_params(rows: Rows, count: int, *, text_times: bool) -> list[tuple[Any, ...]]:
    """The lean table's rows (`ceiling_sql.LEAN_COLUMNS`); times as text for SQLite."""
    out: list[tuple[Any, ...]] = []
    for r, text in zip(rows.records[:count], rows.bodies[:count], strict=True):
        ts, accepted = (
            (ts_text(r.ts), ts_text(r.accepted_at)) if text_times else (r.ts, r.accepted_at)
        )
        out.append((r.event_id, r.run_id, r.project_id, r.dialect, ts, accepted, text))
    return out


# --- SQLite ---------------------------------------------------------------------------------


def _sqlite_batch(conn: Any, statement: str, params: list[tuple[Any, ...]]) -> float:
    """One batch as the store's insert_batch writes it (one transaction, one executemany)."""
    before = conn.total_changes
    began = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(statement, params)
    conn.execute("COMMIT")
    spent = time.perf_counter() - began
    if conn.total_changes - before != len(params):
        raise AssertionError(f"{conn.total_changes - before} of {len(params)} rows inserted")
    return spent


def _timed_sqlite(conn: Any, statement: str, work: list[list[tuple[Any, ...]]]) -> list[float]:
    return [_sqlite_batch(conn, statement, params) for params in work]


def _side_by_side(
    conns: tuple[Any, Any], statements: tuple[str, str], works: tuple[list[Any], list[Any]]
) -> tuple[list[float], list[float]]:
    """Today's and the new layout, batch by batch in turn, each into its own file."""
    spent: tuple[list[float], list[float]] = ([], [])
    for i in range(len(works[0])):
        order = (0, 1) if i % 2 == 0 else (1, 0)  # neither always goes first
        for side in order:
            spent[side].append(_sqlite_batch(conns[side], statements[side], works[side][i]))
    return spent


def _sqlite_file(ws: Workspace, name: str) -> Path:
    return Path(ws.sqlite_url(name).removeprefix("sqlite:///"))


def _sqlite_variant(ws: Workspace, variant: sql.Variant, work: list[Any], tag: str) -> Any:
    script = sql.edited(migrations.migrations("sqlite")[0].sql, variant)
    if script is None:
        return {"skipped": "the schema's text changed: this variant no longer applies"}
    path = _sqlite_file(ws, f"ceiling-{tag}")
    conn = connect(path)
    try:
        conn.executescript(script)
        for statement in variant.sqlite:
            conn.execute(statement)
        statement = V1_INSERT_SQL if variant.idempotent else sql.without_conflict(V1_INSERT_SQL)
        rows = sum(len(b) for b in work)
        return timing(_timed_sqlite(conn, statement, work), rows)
    finally:
        conn.close()


def measure_sqlite(ws: Workspace, rows: Rows, diag_rows: int) -> dict[str, Any]:
    """The real schema beside 0001's, the lean table and 0001's variants, on SQLite."""
    count = len(rows.records)
    began = time.perf_counter()
    work = [insert_params(records_of(b)) for b in batches(rows.envelopes)]  # as insert_batch
    out: dict[str, Any] = {"prepare_us_per_row": per_row_us(time.perf_counter() - began, count)}
    began = time.perf_counter()
    today_work = [v1_params(records_of(b)) for b in batches(rows.envelopes)]
    out["today_prepare_us_per_row"] = per_row_us(time.perf_counter() - began, count)
    path, today = _sqlite_file(ws, "ceiling"), _sqlite_file(ws, "ceiling-today")
    asyncio.run(migrate_history(f"sqlite:///{path}"))
    conns = (connect(today), connect(path))
    try:
        create_v1(conns[0])
        spent = _side_by_side(conns, (V1_INSERT_SQL, INSERT_SQL), (today_work, work))
    finally:
        for conn in conns:
            conn.close()
    out["today"], out["schema"] = timing(spent[0], count), timing(spent[1], count)
    lean = _sqlite_file(ws, "ceiling-lean")
    conn = connect(lean)
    try:
        conn.execute(sql.LEAN_SQLITE)
        lean_work = batches(lean_params(rows, count, text_times=True))
        out["lean"] = timing(_timed_sqlite(conn, sql.LEAN_SQLITE_INSERT, lean_work), count)
    finally:
        conn.close()
    diag = today_work[: max(1, diag_rows // BATCH)]
    out["variants"] = {tag: _sqlite_variant(ws, v, diag, tag) for v, tag in sql.ORDER}
    out["variant_rows"] = sum(len(b) for b in diag)
    return out


# --- PostgreSQL -----------------------------------------------------------------------------


async def _pg_connect(url: str) -> PgConn:
    schema = schema_of(url) or "public"
    return await asyncpg.connect(url.split("?", 1)[0], server_settings={"search_path": schema})


def _staged(stage: str, table: str, columns: Sequence[str], insert: str) -> PgInsert:
    """The store's stage-then-move insert with other statements (lean table, no unique key)."""

    async def run(conn: PgConn, records: list[Any]) -> int:
        await conn.execute(stage)
        await conn.copy_records_to_table(table, records=records, columns=columns)
        status = await conn.execute(insert)
        return int(status.rsplit(" ", 1)[-1])

    return run


async def _pg_batch(conn: PgConn, insert: PgInsert, records: list[Any]) -> float:
    began = time.perf_counter()
    async with conn.transaction():  # as the store's staged path: one transaction a batch
        new = await insert(conn, records)
    spent = time.perf_counter() - began
    if new != len(records):
        raise AssertionError(f"{new} of {len(records)} rows inserted")
    return spent


async def _pg_store_batch(conn: PgConn, records: list[Any]) -> float:
    """One batch exactly as the store's insert_records writes it (`copy_insert`)."""
    began = time.perf_counter()
    new, had_stored = await copy_insert(conn, records, direct=True)
    spent = time.perf_counter() - began
    if new != len(records) or had_stored:
        raise AssertionError(f"{new} of {len(records)} rows inserted")
    return spent


async def _timed_postgres(conn: PgConn, insert: PgInsert, work: list[list[Any]]) -> list[float]:
    return [await _pg_batch(conn, insert, records) for records in work]


async def _pg_0001(url: str) -> PgConn:
    """A fresh schema holding migration 0001 alone (today's reference), connected to it."""
    schema = schema_of(url) or "public"
    conn = await _pg_connect(url)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.execute(migrations.migrations("postgres")[0].sql)
    # The months the store creates at its first write: this one and three ahead.
    await conn.execute(
        "SELECT history_ensure_month((date_trunc('month', now() AT TIME ZONE 'UTC') "
        "+ m * interval '1 month')::date) FROM generate_series(0, 3) m"
    )
    return conn


async def _pg_side_by_side(ws: Workspace, work: list[list[Any]]) -> tuple[list[float], ...]:
    """0001 with the staged insert, and the real schema with the store's insert, batch by
    batch in turn."""
    url = ws.postgres_url("ceiling")
    await migrate_history(url)
    conns = (await _pg_0001(ws.postgres_url("ceiling_today")), await _pg_connect(url))
    spent: tuple[list[float], list[float]] = ([], [])
    try:
        for i, records in enumerate(work):
            for side in (0, 1) if i % 2 == 0 else (1, 0):
                if side == 0:
                    spent[0].append(await _pg_batch(conns[0], stage_and_insert, records))
                else:
                    spent[1].append(await _pg_store_batch(conns[1], records))
    finally:
        for conn in conns:
            await conn.close()
    return spent


async def _pg_schema_rate(url: str, insert: PgInsert, work: list[list[Any]], *setup: str) -> Any:
    """A fresh schema by the real migration, `setup` run on it, then the timed inserts."""
    await migrate_history(url)
    conn = await _pg_connect(url)
    try:
        for statement in setup:
            await conn.execute(statement)
        return timing(await _timed_postgres(conn, insert, work), sum(len(b) for b in work))
    finally:
        await conn.close()


async def _pg_lean(url: str, rows: Rows) -> Any:
    schema = schema_of(url) or "public"
    conn = await _pg_connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(sql.LEAN_POSTGRES)
        work = batches(lean_params(rows, len(rows.records), text_times=False))
        run = _staged(sql.LEAN_POSTGRES_STAGE, "lean_stage", sql.LEAN_COLUMNS,
                      sql.LEAN_POSTGRES_INSERT)  # fmt: skip
        return timing(await _timed_postgres(conn, run, work), len(rows.records))
    finally:
        await conn.close()


def _pg_insert(variant: sql.Variant) -> PgInsert:
    if variant.idempotent:
        return stage_and_insert
    return _staged(PG_STAGE, "history_stage", COLUMNS, sql.without_conflict(PG_INSERT))


async def measure_postgres(ws: Workspace, rows: Rows, diag_rows: int) -> dict[str, Any]:
    """The real schema beside 0001's, the lean table and the schema variants, on PostgreSQL."""
    count = len(rows.records)
    began = time.perf_counter()
    work = [escaped_records(records_of(b)) for b in batches(rows.envelopes)]  # as insert_batch
    out: dict[str, Any] = {"prepare_us_per_row": per_row_us(time.perf_counter() - began, count)}
    today, new = await _pg_side_by_side(ws, work)
    out["today"], out["schema"] = timing(today, count), timing(new, count)
    out["lean"] = await _pg_lean(ws.postgres_url("ceiling_lean"), rows)
    diag = work[: max(1, diag_rows // BATCH)]
    found: dict[str, Any] = {}
    for variant, tag in sql.ORDER:
        url = ws.postgres_url(f"ceiling_{tag}")
        found[tag] = await _pg_schema_rate(url, _pg_insert(variant), diag, *variant.postgres)
    out["variants"] = found
    out["variant_rows"] = sum(len(b) for b in diag)
    return out


def run(ws: Workspace, plan: Plan) -> dict[str, Any]:
    """The part: both backends, the same prepared rows."""
    rows = prepare(plan.ceiling_rows)
    return {
        "batch": BATCH,
        "sqlite": measure_sqlite(ws, rows, plan.ceiling_variant_rows),
        "postgres": asyncio.run(measure_postgres(ws, rows, plan.ceiling_variant_rows)),
    }
