"""One history backend end to end: start the services, run the pipeline phases, stop them."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis

from bench import pipeline
from bench.env import REDIS_URL, Workspace
from bench.plan import Plan
from bench.probes import History, open_history
from bench.services import PIPELINE, RssSampler, ServiceGroup, status_kb
from bench.stats import rounded
from shared.names import Names


def _memory(sampler: RssSampler, pids: dict[str, int]) -> dict[str, Any]:
    return {
        "rss_peak_mb": {s: sampler.peak_mb(s, "sustained") for s in PIPELINE},
        "rss_anon_peak_mb": {s: sampler.peak_mb(s, "sustained", anon=True) for s in PIPELINE},
        "vm_hwm_mb": {
            s: rounded(status_kb(pid).get("VmHWM", 0) / 1024, 1) for s, pid in pids.items()
        },
    }


async def _phases(
    p: pipeline.Pipeline, plan: Plan, backend: str, sampler: RssSampler, pids: dict[str, int]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sampler.phase = "sustained"
    out["sustained"] = await pipeline.sustained(p, plan.sustained_s, plan.warmup_s, "s-")
    out["memory"] = _memory(sampler, pids)
    sampler.phase = "latency"
    out["latency_1k"] = await pipeline.latency(p, 1000.0, plan.latency_s, "l1k-")
    top = out["sustained"]["eps"]
    if top and plan.latency_half and (backend == "sqlite" or plan.latency_half_postgres):
        out["latency_half"] = await pipeline.latency(p, top / 2, plan.latency_s, "lhalf-")
    if backend == "sqlite" and plan.dead_letter_s:
        sampler.phase = "dead_letter"
        out["dead_letter"] = await pipeline.sustained(
            p, plan.dead_letter_s, plan.warmup_s, "d-", invalid_every=2
        )
    return out


async def run_backend(ws: Workspace, plan: Plan, backend: str) -> dict[str, Any]:
    """Every pipeline phase on one backend (sqlite or postgres)."""
    url = ws.sqlite_url(backend) if backend == "sqlite" else ws.postgres_url(backend)
    services = ServiceGroup(ws.namespace(backend), url, ws.directory)
    client = aredis.Redis.from_url(REDIS_URL)
    sampler: RssSampler | None = None
    history: History | None = None
    out: dict[str, Any] = {}
    try:
        out["startup_s"] = round(services.start(), 2)
        sampler = RssSampler(services.pids).start()
        history = await open_history(url)
        p = pipeline.Pipeline(Names(services.names.namespace), client, history, services.pids)
        out |= await _phases(p, plan, backend, sampler, services.pids)
    finally:
        if sampler is not None:
            sampler.stop()
        if history is not None:
            await history.close()
        out["exit_codes"] = services.stop()
        await client.aclose()
    return out
