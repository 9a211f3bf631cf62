"""The machine's limits, measured first: what one Python process can push and pull.

- limit 1: one process XADDs 300-byte JSON events (already encoded) to a stream, pipelined in
  batches of 1000 (the redis-py client with hiredis, no transaction);
- limit 2: one process reads them back as a consumer group, ``XREADGROUP COUNT 1000`` and one
  ``XACK`` per batch.

Every round uses a fresh stream, deleted afterwards; the figure is the median of the rounds.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from bench.events import body, now_iso
from bench.stats import median, rounded
from shared.wire import DATA_FIELD

BATCH = 1000


def push(client: redis.Redis, stream: str, count: int) -> float:
    """Events/s of pipelined XADD of `count` pre-encoded events."""
    ts = now_iso()
    bodies = [body(seq, "lim-", ts) for seq in range(BATCH)]
    began = time.perf_counter()
    for _ in range(count // BATCH):
        pipe = client.pipeline(transaction=False)
        for data in bodies:
            pipe.xadd(stream, {DATA_FIELD: data})
        pipe.execute()
    return (count // BATCH * BATCH) / (time.perf_counter() - began)


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


def measure(client: redis.Redis, stream: str, count: int, rounds: int) -> dict[str, object]:
    """Both limits, `rounds` times each on `count` events; medians and every round."""
    pushes: list[float] = []
    pulls: list[float] = []
    for _ in range(rounds):
        client.unlink(stream)
        pushes.append(push(client, stream, count))
        pulls.append(pull(client, stream, count))
        client.unlink(stream)
    return {
        "limit_xadd_eps": rounded(median(pushes), 0),
        "limit_consume_eps": rounded(median(pulls), 0),
        "limit_rounds": {
            "events": count,
            "xadd_eps": [round(x) for x in pushes],
            "consume_eps": [round(x) for x in pulls],
        },
    }
