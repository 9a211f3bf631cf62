"""The machine's limits, measured first: what one Python process can push and pull.

- limit 1 (``limit_xadd_eps``): one process XADDs 300-byte JSON events (already encoded) to a
  stream, pipelined in batches of 1000, with the fastest client Python has here: redis-py's
  blocking client, which packs commands with hiredis (C);
- limit 2 (``limit_consume_eps``): one process reads them back as a consumer group,
  ``XREADGROUP COUNT 1000`` and one ``XACK`` per batch, same client.

For context, the same two with redis-py's asyncio client (what the services use: it packs
commands in Python, so it is slower), and limit 1 with each event built and encoded on the
fly with its own time (what `bench.producer` does when nothing holds it back).

Every round uses a fresh stream, deleted afterwards; each figure is the median of the rounds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aredis

from bench.env import REDIS_URL
from bench.events import body, now_iso
from bench.stats import median, rounded
from shared.wire import DATA_FIELD

BATCH = 1000


def _bodies() -> list[bytes]:
    ts = now_iso()
    return [body(seq, "lim-", ts) for seq in range(BATCH)]


def push(client: redis.Redis, stream: str, count: int, encode: bool = False) -> float:
    """Events/s of pipelined XADD (pre-encoded events, or each encoded on the fly)."""
    bodies = _bodies()
    began = time.perf_counter()
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        for seq in range(BATCH):
            data = body(start + seq, "lim-", now_iso()) if encode else bodies[seq]
            pipe.xadd(stream, {DATA_FIELD: data})
        pipe.execute()
    return count / (time.perf_counter() - began)


def pull(client: redis.Redis, stream: str, count: int) -> float:
    """Events/s of XREADGROUP COUNT 1000 + one XACK per batch, until `count` are acked."""
    client.xgroup_create(stream, "limit", id="0")
    done = 0
    began = time.perf_counter()
    while done < count:
        reply: Any = client.xreadgroup("limit", "c1", {stream: ">"}, count=BATCH)
        if not reply:
            break
        ids: list[bytes] = [entry_id for entry_id, _fields in reply[0][1]]
        client.xack(stream, "limit", *ids)
        done += len(ids)
    return done / (time.perf_counter() - began)


async def _push_async(client: aredis.Redis, stream: str, count: int) -> float:
    bodies = _bodies()
    began = time.perf_counter()
    for _ in range(count // BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for data in bodies:
                pipe.xadd(stream, {DATA_FIELD: data})
            await pipe.execute()
    return count / (time.perf_counter() - began)


async def _pull_async(client: aredis.Redis, stream: str, count: int) -> float:
    await client.xgroup_create(stream, "limit", id="0")
    done = 0
    began = time.perf_counter()
    while done < count:
        reply: Any = await client.xreadgroup("limit", "c1", {stream: ">"}, count=BATCH)
        if not reply:
            break
        ids: list[bytes] = [entry_id for entry_id, _fields in reply[0][1]]
        await client.xack(stream, "limit", *ids)
        done += len(ids)
    return done / (time.perf_counter() - began)


def asyncio_pair(stream: str, count: int) -> tuple[float, float]:
    """Push then pull with the asyncio client (as the services talk to Redis)."""

    async def both() -> tuple[float, float]:
        client = aredis.Redis.from_url(REDIS_URL)
        try:
            return await _push_async(client, stream, count), await _pull_async(
                client, stream, count
            )
        finally:
            await client.aclose()

    return asyncio.run(both())


def _rounds(client: redis.Redis, stream: str, rounds: int, measure: Callable[[], Any]) -> list[Any]:
    found = []
    for _ in range(rounds):
        client.unlink(stream)
        found.append(measure())
        client.unlink(stream)
    return found


def measure(client: redis.Redis, stream: str, count: int, rounds: int) -> dict[str, Any]:
    """Every limit, `rounds` times on `count` events; medians and every round."""
    count = max(BATCH, count // BATCH * BATCH)
    sync = _rounds(
        client, stream, rounds, lambda: (push(client, stream, count), pull(client, stream, count))
    )
    aio = _rounds(client, stream, rounds, lambda: asyncio_pair(stream, count))
    encoded = _rounds(client, stream, rounds, lambda: push(client, stream, count, encode=True))
    return {
        "limit_xadd_eps": rounded(median([p for p, _ in sync]), 0),
        "limit_consume_eps": rounded(median([c for _, c in sync]), 0),
        "limit_xadd_asyncio_eps": rounded(median([p for p, _ in aio]), 0),
        "limit_consume_asyncio_eps": rounded(median([c for _, c in aio]), 0),
        "limit_xadd_encoding_eps": rounded(median(encoded), 0),
        "rounds": {
            "events": count,
            "xadd_eps": [round(p) for p, _ in sync],
            "consume_eps": [round(c) for _, c in sync],
            "xadd_asyncio_eps": [round(p) for p, _ in aio],
            "consume_asyncio_eps": [round(c) for _, c in aio],
            "xadd_encoding_eps": [round(x) for x in encoded],
        },
    }
