"""What the benchmark reads to see events arrive: history rows, coach state, group progress.

A reader of the history goes straight to the table (a second connection, like any dashboard
would), never through the services, so it sees exactly what is committed.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
import redis.asyncio as aredis
from redis.exceptions import ResponseError

from bench.events import PROBE_FACT, PROBE_PROJECT
from services.history.postgres import schema_of
from shared.names import Names, StreamKind
from shared.pipeline import PIPELINE

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Where a keyset read stopped: the last row's ``(ts as the driver returns it, id)``.
Keyset = tuple[Any, int]
#: (event id, publish time as epoch seconds, keyset position) of a probe row.
ProbeRow = tuple[str, float, Keyset]


class History(Protocol):
    """Read access to a history table."""

    async def count(self) -> int:
        """Rows in the history."""

    async def probes_after(self, run_id: str, after: Keyset | None) -> list[ProbeRow]:
        """Rows of `run_id` after a keyset position (from the start when None), in order."""

    async def close(self) -> None:
        """Release the connection."""


class SqliteHistory:
    """A read-only connection to a SQLite history file."""

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite:///")
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    async def count(self) -> int:
        """Rows in the history."""
        return int(self.conn.execute("SELECT count(*) FROM history").fetchone()[0])

    async def probes_after(self, run_id: str, after: Keyset | None) -> list[ProbeRow]:
        """Probe rows after a keyset position."""
        rows = self.conn.execute(
            "SELECT event_id, ts, id FROM history WHERE run_id = ? AND (ts, id) > (?, ?) "
            "ORDER BY ts, id LIMIT 5000",
            (run_id, *(after or (-1, 0))),
        ).fetchall()
        # ts: microseconds since the epoch (services.history.sqlite_rows)
        return [(e, ts / 1e6, (ts, i)) for e, ts, i in rows]

    async def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class PostgresHistory:
    """One asyncpg connection to a PostgreSQL history schema."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> PostgresHistory:
        """Connect to the schema named by the URL's search_path."""
        base = url.split("?", 1)[0]
        settings = {"search_path": schema_of(url) or "public"}
        return cls(await asyncpg.connect(base, server_settings=settings))

    async def count(self) -> int:
        """Rows in the history."""
        return int(await self.conn.fetchval("SELECT count(*) FROM history"))

    async def probes_after(self, run_id: str, after: Keyset | None) -> list[ProbeRow]:
        """Probe rows after a keyset position."""
        ts, row_id = after or (_EPOCH, 0)
        rows = await self.conn.fetch(
            "SELECT event_id, ts, id FROM history WHERE run_id = $1 AND (ts, id) > ($2, $3) "
            "ORDER BY ts, id LIMIT 5000",
            run_id,
            ts,
            row_id,
        )
        return [(r[0], r[1].timestamp(), (r[1], r[2])) for r in rows]

    async def close(self) -> None:
        """Close the connection."""
        await self.conn.close()


async def open_history(url: str) -> History:
    """A reader of the history at a database URL."""
    if url.startswith("sqlite:///"):
        return SqliteHistory(url)
    return await PostgresHistory.connect(url)


async def group_done(client: aredis.Redis, stream: str, group: str) -> int:
    """Entries a group has read and acknowledged (entries-read minus pending)."""
    try:
        groups = await client.xinfo_groups(stream)
    except ResponseError:
        return 0
    for g in groups:
        if g["name"].decode() == group:
            return int(g["entries-read"] or 0) - int(g["pending"])
    return 0


async def stage_done(client: aredis.Redis, names: Names, stage: str) -> int:
    """Entries of its streams (every partition's) one `PIPELINE` stage read and acknowledged."""
    declared = PIPELINE.stage(stage)
    done = [await group_done(client, s, declared.group) for s in names.streams(declared.reads)]
    return sum(done)


async def dead_letters(client: aredis.Redis, names: Names) -> int:
    """Entries of every partition's dead-letter stream."""
    return sum([int(await client.xlen(stream)) for stream in names.streams(StreamKind.DEAD)])


async def coached(client: aredis.Redis, names: Names) -> int:
    """Valid-stream entries the coach finished (its cache written, then acknowledged)."""
    return await stage_done(client, names, "coach")


async def persisted(client: aredis.Redis, names: Names) -> int:
    """Valid-stream entries the persister finished (committed, then acknowledged)."""
    return await stage_done(client, names, "persister")


async def probe_fact(client: aredis.Redis, names: Names) -> str | None:
    """Event id of the latest latency probe merged into the coach state, if any."""
    raw = await client.hget(names.coach_state(PROBE_PROJECT), PROBE_FACT)
    if raw is None:
        return None
    _ts, eid, _value = orjson.loads(raw)
    return str(eid)
