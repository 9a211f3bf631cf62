"""The yardstick of the ``api_reads`` part: one Python process doing ``GET`` of one key on
redis.asyncio, `concurrency` loops at once, as fast as it can (what an API process serving the
key could at best approach: it does this and HTTP besides)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aredis

from bench.stats import percentile, rounded


async def _loop(client: aredis.Redis, key: str, until: float, took: list[float]) -> None:
    clock = time.perf_counter
    while (began := clock()) < until:
        await client.get(key)
        took.append(clock() - began)


async def measure(redis_url: str, key: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """GETs per second and their p50/p99 (ms) over `seconds`, after a short warm-up."""
    client = aredis.Redis.from_url(redis_url, max_connections=concurrency)
    try:
        if await client.get(key) is None:
            raise RuntimeError(f"bare GET: no key {key}")
        warm = time.perf_counter() + min(1.0, seconds / 5)
        await asyncio.gather(*(_loop(client, key, warm, []) for _ in range(concurrency)))
        took: list[float] = []
        began = time.perf_counter()
        until = began + seconds
        await asyncio.gather(*(_loop(client, key, until, took) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    finally:
        await client.aclose()
    ms = [t * 1000 for t in took]
    return {
        "requests": len(took),
        "rps": round(len(took) / elapsed, 1),
        "p50_ms": rounded(percentile(ms, 50), 3),
        "p99_ms": rounded(percentile(ms, 99), 3),
    }
