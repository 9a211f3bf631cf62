"""Cost growth: run-detail reads as the history grows, dead-letter reads over a long stream.

- Run detail: the history is bulk-loaded with SQL (server-side row generation; through the
  services it would take minutes) in runs of exactly 1000 events whose rows are interleaved
  with every other run's, as concurrent runs are. Then `services.history.reads.run_events`
  (what ``GET /api/runs/{id}/events`` and ``runbus history run`` call) reads whole random runs
  through the real store, rows decoded; p50/p99 per history size.
- Dead letters: the dead-letter stream is filled with realistic dead letters (as the validator
  writes them), then `dead_letter_stats` / `list_dead_letters` are timed as library calls,
  and ``runbus dlq stats`` / ``runbus dlq tail`` as commands (interpreter start included).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis
import redis.asyncio as aredis

from bench.env import REDIS_URL, RUNBUS
from bench.events import body, now_iso
from bench.stats import median, rounded, summary_ms
from services.history import store_for_url
from services.history.base import HistoryStore
from services.history.postgres import schema_of
from services.history.reads import run_events
from services.history.sqlite_rows import BODY as SQLITE_BODY
from services.history.sqlite_rows import COLUMNS as SQLITE_COLUMNS
from services.history.sqlite_rows import micros
from services.ops.deadletters import dead_letter_stats, list_dead_letters
from shared import __version__
from shared.models import DeadLetter
from shared.names import Names
from shared.wire import dead_letter_fields, hint_of

RUN_EVENTS = 1000
#: Rows per bulk-load transaction.
CHUNK = 100_000

# The body's fields (`services.history.sqlite_rows.BODY`) as SQL over the row number i; ?5 is
# the base time in microseconds.
_SQLITE_BODY = {
    "dialect": "'brewslm'", "severity": "'info'", "stage": "'training'", "reason_code": "NULL",
    "event_type": "NULL", "actor": "'bench'",
    "summary": "'training step ' || i || ' finished; loss is going down nicely'",
    "message": "NULL", "taxonomy_version": "'tx-bench'", "source_id": "i || '-0'",
    "accepted_at": "?5 + i * 1000", "created_at": "?5 + i * 1000",
    "payload": """json('{"step":' || i || ',"loss":0.41,"lr":0.0003,"status":"running"}')""",
    "details": "NULL",
}  # fmt: skip
_SQLITE_LOAD = f"""
WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
INSERT INTO history ({", ".join(SQLITE_COLUMNS)})
SELECT 'g-' || i, 'run-' || (?3 + i % ?4), NULL, i % 100, ?5 + i * 1000,
       json_array({", ".join(_SQLITE_BODY[name] for name in SQLITE_BODY)})
FROM seq
"""
assert SQLITE_COLUMNS == ("event_id", "run_id", "parent_run_id", "project_id", "ts", "body")

_POSTGRES_LOAD = """
INSERT INTO history (event_id, dialect, project_id, run_id, stage, severity, actor, summary,
                     payload, ts, accepted_at, taxonomy_version, source_id)
SELECT 'g-' || i, 'brewslm', i % 100, 'run-' || ($3 + i % $4), 'training', 'info', 'bench',
       'training step ' || i || ' finished; loss is going down nicely',
       json_build_object('step', i, 'loss', 0.41, 'lr', 0.0003, 'status', 'running'),
       $5::timestamptz + i * interval '1 millisecond',
       $5::timestamptz + i * interval '1 millisecond',
       'tx-bench', i || '-0'
FROM generate_series($1::bigint, $2::bigint) AS i
"""


def _base_time() -> datetime:
    # Inside the current month: its partition exists (PostgreSQL), 10M ms is under 3 hours.
    now = datetime.now(UTC)
    return now.replace(day=1, hour=1, minute=0, second=0, microsecond=0)


def load_sqlite(url: str, low: int, high: int) -> None:
    """Rows [low, high) as runs of 1000 (run ids from low/1000), interleaved."""
    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, isolation_level=None)
    base = micros(_base_time())
    runs, first_run = (high - low) // RUN_EVENTS, low // RUN_EVENTS
    try:
        for start in range(low, high, CHUNK):
            end = min(high, start + CHUNK) - 1
            conn.execute("BEGIN")
            conn.execute(_SQLITE_LOAD, (start, end, first_run, runs, base))
            conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def load_postgres(url: str, low: int, high: int) -> None:
    """Rows [low, high) as runs of 1000, interleaved (PostgreSQL)."""
    settings = {"search_path": schema_of(url) or "public"}
    conn = await asyncpg.connect(url.split("?", 1)[0], server_settings=settings)
    runs, first_run = (high - low) // RUN_EVENTS, low // RUN_EVENTS
    try:
        for start in range(low, high, CHUNK):
            end = min(high, start + CHUNK) - 1
            await conn.execute(_POSTGRES_LOAD, start, end, first_run, runs, _base_time())
        await conn.execute("ANALYZE history")
    finally:
        await conn.close()


async def _read_runs(store: HistoryStore, runs: int, reads: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    spent: list[float] = []
    for _ in range(reads):
        run_id = f"run-{rng.randrange(runs)}"
        began = time.perf_counter()
        page = await run_events(store, run_id, limit=RUN_EVENTS)
        spent.append(time.perf_counter() - began)
        if len(page.rows) != RUN_EVENTS:
            raise AssertionError(f"{run_id}: {len(page.rows)} rows, expected {RUN_EVENTS}")
    return spent


async def time_reads(store: HistoryStore, runs: int, reads: int) -> dict[str, Any]:
    """Read `reads` random whole runs (1000 events each); latency summary.

    Measured twice: as a process reads by default (the headline figure: nothing tuned), then
    with the objects that exist at that point frozen out of the cyclic garbage collector
    (``gc.freeze()``, what the API does once started). A full collection walks every tracked
    object of the heap (every imported module: tens of ms), and it runs once enough objects
    have been promoted into the oldest generation since the last one. `HistoryRow`s are not
    tracked, so a read promotes little: on SQLite, a full collection every ~1400 reads; on
    PostgreSQL, asyncpg's tracked records of the page being decoded are promoted, one every
    ~150 reads. When the rows were tracked dataclasses: one every ~60 reads, on both.
    """
    await _read_runs(store, runs, 10, seed=1)  # warm the connection and the caches a little
    default = await _read_runs(store, runs, reads, seed=7)
    gc.collect()
    gc.freeze()
    try:
        frozen = await _read_runs(store, runs, reads, seed=8)
    finally:
        gc.unfreeze()
    return {**summary_ms(default), "gc_frozen": summary_ms(frozen)}


async def _grow(url: str, low: int, high: int) -> float:
    began = time.monotonic()
    if url.startswith("sqlite:///"):
        await asyncio.to_thread(load_sqlite, url, low, high)
    else:
        await load_postgres(url, low, high)
    return time.monotonic() - began


async def run_detail(
    url: str,
    sizes: tuple[int, ...],
    reads: int,
    optional: int | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run-detail latency at each history size (loaded cumulatively).

    `optional` is one more size, measured only if loading it is estimated (from the last
    step's pace, plus a third: indexes deepen) to end before `deadline` (monotonic clock).
    """
    store = store_for_url(url)
    await store.open()
    out: dict[str, Any] = {}
    try:
        await store.migrate()
        loaded, pace = 0, 0.0
        for size in sizes:
            load_s = await _grow(url, loaded, size)
            pace, loaded = load_s / (size - loaded), size
            reads_at = await time_reads(store, size // RUN_EVENTS, reads)
            out[str(size)] = {"load_s": round(load_s, 1), **reads_at}
        if optional and deadline is not None:
            estimate = pace * (optional - loaded) * 1.33
            if time.monotonic() + estimate > deadline:
                out[str(optional)] = {"skipped": f"load estimated at {estimate:.0f} s: over budget"}
            else:
                load_s = await _grow(url, loaded, optional)
                reads_at = await time_reads(store, optional // RUN_EVENTS, reads)
                out[str(optional)] = {"load_s": round(load_s, 1), **reads_at}
    finally:
        await store.close()
    return out


_REASONS = (
    ["invalid_reason_code:bench_no_such_code"],
    ["missing_reason_code"],
    ["invalid_stage:trainig"],
    ["schema_violation:project_id", "invalid_severity:fatal"],
    ["malformed_json"],
)


def _letters(names: Names) -> list[dict[bytes, bytes]]:
    """Field sets of realistic dead letters (as the validator writes them), one per reason."""
    now = datetime.now(UTC)
    letters = []
    for n, errors in enumerate(_REASONS):
        original = body(n, "dl-", now_iso(), invalid=True)
        letter = DeadLetter(
            errors=errors,
            message=f"rejected: {', '.join(errors)}",
            original=original,
            source_stream=names.events,
            source_id=f"{int(now.timestamp() * 1000)}-{n}",
            group="validator",
            consumer="validator-bench-0",
            stage="validator",
            delivery_count=1,
            first_seen=now,
            dead_at=now,
            taxonomy_version="tx-bench",
            service_version=__version__,
            hint=hint_of(original),
        )
        letters.append(dead_letter_fields(letter))
    return letters


def fill_dead_letters(names: Names, count: int, redis_url: str = REDIS_URL) -> None:
    """Append `count` dead letters to the namespace's dead-letter stream."""
    client = redis.Redis.from_url(redis_url)
    letters = _letters(names)
    try:
        for start in range(0, count, 1000):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(count, start + 1000)):
                pipe.xadd(names.dead, letters[n % len(letters)])  # type: ignore[arg-type]
            pipe.execute()
    finally:
        client.close()


def _command(namespace: str, *args: str) -> float:
    env = dict(os.environ, RUNBUS_NAMESPACE=namespace, RUNBUS_REDIS_URL=REDIS_URL)
    began = time.perf_counter()
    subprocess.run([str(RUNBUS), "dlq", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


async def dead_letter_reads(namespace: str, count: int, rounds: int = 3) -> dict[str, Any]:
    """Timings of dlq stats / tail over `count` dead letters (CLI commands `rounds` times)."""
    names = Names(namespace)
    await asyncio.to_thread(fill_dead_letters, names, count)
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        stats_s = []
        for _ in range(3):
            began = time.perf_counter()
            result = await dead_letter_stats(client, names)
            stats_s.append(time.perf_counter() - began)
        if result.length != count:
            raise AssertionError(f"dead-letter stream holds {result.length}, expected {count}")
        tail_s = []
        for _ in range(50):
            began = time.perf_counter()
            await list_dead_letters(client, names, limit=20)
            tail_s.append(time.perf_counter() - began)
    finally:
        await client.aclose()
    cli_stats = [_command(namespace, "stats", "--json") for _ in range(rounds)]
    cli_tail = [_command(namespace, "tail", "-n", "20", "--json") for _ in range(rounds)]
    return {
        "dead_letters": count,
        "stats_s": rounded(median(stats_s), 3),
        "tail": summary_ms(tail_s),
        "cli_stats_s": rounded(median(cli_stats), 3),
        "cli_tail_s": rounded(median(cli_tail), 3),
    }
