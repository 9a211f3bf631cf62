"""Memory under a backlog: start the services on 1M waiting events; RSS must stay flat.

The incoming stream is pre-filled server-side (a Lua loop of XADD, 10 event kinds without
event ids, so each gets its own id derived from its entry id), then validator, persister
(SQLite) and coach start and chew through it while their RSS is sampled. Bounded batches mean
the RSS after the first batches is the RSS for good; an unbounded buffer would show as growth.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

from bench.env import REDIS_URL, Workspace
from bench.events import TEMPLATES, body, now_iso
from bench.services import PIPELINE, RssSampler, ServiceGroup
from bench.stats import rounded
from shared.names import Names

_FILL_LUA = """
local n = tonumber(ARGV[1])
local kinds = #ARGV - 1
for i = 1, n do
  redis.call('XADD', KEYS[1], '*', '__data__', ARGV[2 + (i % kinds)])
end
return n
"""
#: Entries per Lua call: each call holds the (shared) server for a few tens of ms at most.
FILL_CHUNK = 5_000


def _bodies() -> list[bytes]:
    ts = now_iso()
    found = []
    for seq in range(len(TEMPLATES)):
        doc = orjson.loads(body(seq, "m-", ts))
        del doc["event_id"]
        found.append(orjson.dumps(doc))
    return found


def prefill(client: redis.Redis, names: Names, count: int) -> float:
    """XADD `count` events to the incoming stream; seconds it took."""
    fill = client.register_script(_FILL_LUA)
    kinds = _bodies()
    began = time.monotonic()
    for start in range(0, count, FILL_CHUNK):
        fill(keys=[names.events], args=[min(FILL_CHUNK, count - start), *kinds])
    return time.monotonic() - began


def _growth(series: list[tuple[float, float, float]], column: int) -> float | None:
    """RSS at the end minus RSS half-way through the window (MB): the drift once warm.

    The first half is the warm-up: the persister's SQLite page cache (``cache_size``, 64 MiB)
    fills as the history grows, then stays full.
    """
    if len(series) < 4:
        return None
    return round(series[-1][column] - series[len(series) // 2][column], 1)


def _processed(client: redis.Redis, names: Names) -> int:
    groups = {g["name"].decode(): g for g in client.xinfo_groups(names.events)}
    validator = groups.get("validator")
    return int(validator["entries-read"] or 0) if validator else 0


def backlog(ws: Workspace, count: int, seconds: float) -> dict[str, Any]:
    """Pre-fill `count` events, run the services for `seconds`, report their RSS."""
    names = Names(ws.namespace("backlog"))
    client = redis.Redis.from_url(REDIS_URL)
    services = ServiceGroup(names.namespace, ws.sqlite_url("backlog"), ws.directory)
    try:
        memory_before = int(client.info("memory")["used_memory"])
        fill_s = prefill(client, names, count)
        redis_mb = (int(client.info("memory")["used_memory"]) - memory_before) / 2**20
        services.start()
        sampler = RssSampler(services.pids, phase="backlog").start()
        time.sleep(seconds)  # the measurement window: sampling runs meanwhile
        sampler.stop()
        validated = _processed(client, names)
    finally:
        services.stop()
        client.close()
    per_service: dict[str, dict[str, Any]] = {
        s: {
            "peak_mb": sampler.peak_mb(s, "backlog"),
            "peak_anon_mb": sampler.peak_mb(s, "backlog", anon=True),
            "growth_mb": _growth(sampler.series_mb(s, "backlog"), 1),
            "growth_anon_mb": _growth(sampler.series_mb(s, "backlog"), 2),
            "series": sampler.series_mb(s, "backlog")[:: max(1, int(2 / sampler.interval))],
        }
        for s in PIPELINE
    }
    return {
        "backlog": count,
        "fill_s": round(fill_s, 1),
        "redis_stream_mb": round(redis_mb, 1),
        "seconds": seconds,
        "validated_in_window": validated,
        "services": per_service,
        "rss_mb_max": rounded(max(float(v["peak_mb"] or 0.0) for v in per_service.values()), 1),
        "rss_anon_mb_max": rounded(
            max(float(v["peak_anon_mb"] or 0.0) for v in per_service.values()), 1
        ),
    }
