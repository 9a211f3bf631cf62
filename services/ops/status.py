"""Redis I/O for `runbus status`: streams, consumer groups, pending entries and consumers.

The streams and groups are the pipeline's (`shared.pipeline.PIPELINE`): each partition's
streams with the stages' groups, then each outlet (the actions stream) with the group its
outside reader uses. Absent streams and groups are reported as absent (``exists: false``),
never raised: status is what ops run when something is already wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import ResponseError

from services.ops.logic import age_s, now_utc
from services.ops.models import (
    BusStatus,
    ConsumerStatus,
    GroupStatus,
    GroupTotal,
    RedisMemory,
    RetentionStatus,
    RoleTotal,
    StreamStatus,
)
from shared.names import Names
from shared.pipeline import PIPELINE, Outlet
from shared.wire import as_text


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_text(value: Any) -> str | None:
    return None if value is None else as_text(value)


def _entry_id(entry: Any) -> str | None:
    # XINFO STREAM gives first-entry / last-entry as (id, fields), or None when empty.
    return as_text(entry[0]) if entry else None


async def _consumers(client: aredis.Redis, stream: str, group: str) -> list[ConsumerStatus]:
    rows = await client.xinfo_consumers(stream, group)
    return [
        ConsumerStatus(
            name=as_text(row["name"]),
            pending=int(row.get("pending", 0)),
            idle_ms=int(row.get("idle", 0)),
            inactive_ms=_opt_int(row.get("inactive")),
        )
        for row in rows
    ]


async def _group(
    client: aredis.Redis, stream: str, row: dict[str, Any], now: datetime, expected: bool
) -> GroupStatus:
    name = as_text(row["name"])
    pending = int(row.get("pending", 0))
    oldest: str | None = None
    if pending:
        summary = await client.xpending(stream, name)
        oldest = _opt_text(summary.get("min"))
    lag = _opt_int(row.get("lag"))
    last = _opt_text(row.get("last-delivered-id"))
    return GroupStatus(
        name=name,
        exists=True,
        expected=expected,
        consumers=await _consumers(client, stream, name),
        pending=pending,
        lag=lag,
        last_delivered_id=last,
        entries_read=_opt_int(row.get("entries-read")),
        oldest_pending_id=oldest,
        oldest_pending_age_s=age_s(oldest, now),
        lag_s=lag_age_s(oldest, lag, last, now),
    )


def lag_age_s(
    oldest_pending: str | None, lag: int | None, last_delivered: str | None, now: datetime
) -> float | None:
    """How far behind a group is, in seconds, from what XINFO GROUPS and XPENDING say (no
    entry is read: the ops user may not read the streams' content).

    Its oldest pending entry waits longest; entries waiting undelivered arrived after the last
    one delivered, so that one's age bounds theirs. Caught up (nothing pending, no lag): 0.
    """
    ages = [age_s(oldest_pending, now)]
    if lag is None or lag > 0:
        ages.append(age_s(last_delivered, now) if last_delivered != "0-0" else None)
    known = [a for a in ages if a is not None]
    if known:
        return max(known)
    return 0.0 if lag == 0 else None


async def _groups(
    client: aredis.Redis, stream: str, expected: tuple[str, ...], now: datetime
) -> list[GroupStatus]:
    rows = {as_text(row["name"]): row for row in await client.xinfo_groups(stream)}
    out = [
        await _group(client, stream, rows[name], now, True)
        if name in rows
        else GroupStatus(name=name, exists=False, expected=True)
        for name in expected
    ]
    out += [
        await _group(client, stream, row, now, False)
        for name, row in sorted(rows.items())
        if name not in expected
    ]
    return out


async def stream_status(
    client: aredis.Redis,
    names: Names,
    role: str,
    stream: str,
    now: datetime,
    partition: int = 0,
) -> StreamStatus:
    """One stream of a partition: length, first/last entry ages, and its groups (the stages'
    first)."""
    expected = PIPELINE.groups_of(names, stream)
    return await _stream_status(client, role, stream, expected, now, partition)


async def outlet_status(
    client: aredis.Redis, names: Names, outlet: Outlet, now: datetime
) -> StreamStatus:
    """One outlet's stream (one for the whole bus), its reader's group first."""
    return await _stream_status(client, outlet.title, outlet.key(names), (outlet.group,), now)


async def _stream_status(
    client: aredis.Redis,
    role: str,
    stream: str,
    expected: tuple[str, ...],
    now: datetime,
    partition: int = 0,
) -> StreamStatus:
    absent = StreamStatus(
        role=role,
        partition=partition,
        name=stream,
        exists=False,
        groups=[GroupStatus(name=g, exists=False, expected=True) for g in expected],
    )
    try:
        info = await client.xinfo_stream(stream)
    except ResponseError as exc:
        if "no such key" in str(exc).lower():
            return absent
        return absent.model_copy(update={"error": str(exc)})
    try:
        groups = await _groups(client, stream, expected, now)
    except ResponseError:
        # Deleted between the two calls: report what it was a moment ago, groups unknown.
        groups = absent.groups
    first = _entry_id(info.get("first-entry"))
    last = _entry_id(info.get("last-entry"))
    return StreamStatus(
        role=role,
        partition=partition,
        name=stream,
        exists=True,
        length=int(info.get("length", 0)),
        first_id=first,
        first_age_s=age_s(first, now),
        last_id=last,
        last_age_s=age_s(last, now),
        groups=groups,
    )


def _group_total(role: str, name: str, groups: list[GroupStatus]) -> GroupTotal:
    present = [g for g in groups if g.exists]
    lags = [g.lag for g in present]
    return GroupTotal(
        role=role,
        name=name,
        pending=sum(g.pending for g in present),
        lag=None if None in lags else sum(g.lag or 0 for g in present),
        consumers=len({c.name for g in present for c in g.consumers}),
        missing=len(groups) - len(present),
    )


#: The roles of the bus's streams, in pipeline order.
_KINDS = tuple(stream.kind for stream in PIPELINE.streams)


def role_totals(streams: Sequence[StreamStatus]) -> list[RoleTotal]:
    """Each role's streams and groups summed over the partitions, in pipeline order."""
    totals = []
    for kind in _KINDS:
        mine = [s for s in streams if s.role == kind.value]
        groups: dict[str, list[GroupStatus]] = {}
        for stream in mine:
            for group in stream.groups:
                groups.setdefault(group.name, []).append(group)
        totals.append(
            RoleTotal(
                role=kind.value,
                length=sum(s.length for s in mine),
                missing=sum(1 for s in mine if not s.exists),
                groups=[_group_total(kind.value, n, g) for n, g in groups.items()],
            )
        )
    return totals


async def bus_status(
    client: aredis.Redis, names: Names, *, now: datetime | None = None, window_s: float = 0.0
) -> BusStatus:
    """Every stream of the namespace (events, valid, dead of each partition, then the outlets)
    with its groups and consumers, and each role summed over the partitions. One stream at a
    time: on a cluster each command goes to the node of that stream's slot.

    With `window_s`, Redis's memory is sampled that long before the status is taken too, so
    the status tells its growth and the time until ``maxmemory`` at that rate."""
    before, started = None, time.monotonic()
    if window_s > 0:
        before = await redis_memory(client)
        await asyncio.sleep(window_s)
    moment = now or now_utc()
    streams = [
        await stream_status(client, names, kind.value, p.stream(kind), moment, p.index)
        for p in names.all_partitions
        for kind in _KINDS
    ]
    outlets = [await outlet_status(client, names, o, moment) for o in PIPELINE.outlets]
    totals = role_totals(streams)
    dead = next(t for t in totals if t.role == "dead")
    retention = await retention_status(client, names, moment)
    memory = await redis_memory(client)
    if before is not None and memory is not None:
        memory = with_growth(before, memory, time.monotonic() - started)
    return BusStatus(
        namespace=names.namespace,
        at=moment,
        streams=streams,
        dead_letters=dead.length,
        partitions=names.partitions,
        totals=totals,
        outlets=outlets,
        retention=retention,
        memory=memory,
    )


#: Redis counts as full from this share of its maxmemory: at the limit its memory hovers (each
#: trim frees some, each refused write finds none), so a probe between the two still sees it
#: full.
FULL_SHARE = 0.99


def memory_of(info: dict[str, Any]) -> RedisMemory:
    """The memory fields of one node's ``INFO memory``."""
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    policy = as_text(info.get("maxmemory_policy", ""))
    full = limit > 0 and used >= limit * FULL_SHARE
    return RedisMemory(used_bytes=used, max_bytes=limit, policy=policy, full=full)


def with_growth(before: RedisMemory, after: RedisMemory, seconds: float) -> RedisMemory:
    """`after` with the growth since `before` (`seconds` earlier) and the time until full."""
    if seconds <= 0:
        return after
    rate = (after.used_bytes - before.used_bytes) / seconds
    full_in = None
    if after.max_bytes and rate > 0:
        full_in = max(0.0, (after.max_bytes - after.used_bytes) / rate)
    return after.model_copy(update={"growth_bytes_per_s": rate, "full_in_s": full_in})


async def redis_memory(client: aredis.Redis) -> RedisMemory | None:
    """Redis's memory; on a cluster, the fullest master's. None when INFO is refused."""
    try:
        info: Any = await client.info("memory")
    except ResponseError:  # INFO not allowed to this user
        return None
    nodes = [v for v in info.values() if isinstance(v, dict)] or [info]
    memories = [memory_of(node) for node in nodes]
    return max(memories, key=lambda m: m.used_bytes / m.max_bytes if m.max_bytes else 0.0)


def _number(raw: dict[str, str], name: str) -> float | None:
    try:
        return float(raw[name])
    except (KeyError, ValueError):
        return None


def _count(raw: dict[str, str], name: str) -> int | None:
    value = _number(raw, name)
    return None if value is None else int(value)


def parse_retention(raw: dict[str, str], now: datetime) -> RetentionStatus:
    """The retention hash's fields as a status (a missing or foreign field reads as unknown)."""
    at = now.timestamp()
    swept, oldest_ms = _number(raw, "last_sweep_at"), _count(raw, "archive_oldest_ms")
    return RetentionStatus(
        archived=_count(raw, "archived") or 0,
        expired=_count(raw, "expired") or 0,
        archive_entries=_count(raw, "archive_entries"),
        archive_bytes=_count(raw, "archive_bytes"),
        archive_oldest_age_s=max(0.0, at - oldest_ms / 1000) if oldest_ms else None,
        archive_redriven=_count(raw, "archive_redriven"),
        last_sweep_age_s=max(0.0, at - swept) if swept is not None else None,
        error=raw.get("error") or None,
    )


async def retention_status(client: aredis.Redis, names: Names, now: datetime) -> RetentionStatus:
    """What the persister's retention job last reported (`services.persister.retention`)."""
    try:
        raw = await client.hgetall(names.dead_letter_retention)
    except ResponseError:  # not a hash: nothing reported
        return RetentionStatus()
    return parse_retention({as_text(k): as_text(v) for k, v in raw.items()}, now)
