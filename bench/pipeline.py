"""End to end on the real services: sustained throughput, latency at fixed rates, dead letters.

For one history backend: start validator, persister and coach (one process each, exactly as
`runbus run <service>`), then

1. sustained: the producer offers events flat out (bounded in flight) for a fixed time; the
   figure is rows that reached the history per second over the measured window, and entries
   the coach finished per second (its cache written, then acknowledged) — the lower of the two
   is what the pipeline sustains;
2. latency at 1k/s and at half the sustained maximum: every n-th event is a probe; a poller
   (every 2 ms) sees each probe's row appear in the history and the coach state take it in;
   latency = when seen - the probe's publish time (its ``ts``);
3. (SQLite) the dead-letter path: flat out with every second event invalid; the figure is
   events routed per second (rows stored + dead letters written).

Every phase ends by waiting until everything published was stored or dead-lettered, and says
so (``drained``, ``lost``).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis

from bench.env import REDIS_URL
from bench.events import seq_of
from bench.probes import History, Keyset, coached, dead_letters, probe_fact
from bench.services import PIPELINE, cpu_s
from bench.stats import rate, rounded, summary_ms
from services.runtime.supervisor import die_with_parent
from shared.metrics import StageMetrics, read_stage_metrics
from shared.names import Names
from shared.settings import REPO_ROOT

#: How often the latency poller looks (seconds): the resolution of the latency figures.
POLL_S = 0.002
#: Latency probes per second the producer mixes in (every n-th event, n = rate / this).
PROBES_PER_S = 200


@dataclass
class Pipeline:
    """Running services of one namespace, and what has been published to them so far."""

    names: Names
    client: aredis.Redis
    history: History
    pids: dict[str, int] = field(default_factory=dict)
    valid: int = 0
    invalid: int = 0
    redis_url: str = REDIS_URL
    cluster: bool = False
    redis_ports: tuple[int, ...] = ()
    """Every Redis server whose CPU counts (empty: the one `client` talks to)."""


@dataclass(frozen=True)
class Snap:
    """Progress at one moment."""

    t: float
    rows: int
    coached: int
    dead: int


async def snapshot(p: Pipeline) -> Snap:
    """History rows, coach progress and dead letters now (t: middle of the reads)."""
    began = time.monotonic()
    rows = await p.history.count()
    coach = await coached(p.client, p.names)
    dead = await dead_letters(p.client, p.names)
    return Snap((began + time.monotonic()) / 2, rows, coach, dead)


def spawn_producer(p: Pipeline, seconds: float, **options: Any) -> subprocess.Popen[bytes]:
    """Start `bench.producer` in its own process, publishing to `p`'s partitions."""
    argv = [sys.executable, "-m", "bench.producer", "--redis-url", p.redis_url]
    argv += ["--namespace", p.names.namespace, "--seconds", str(seconds)]
    argv += ["--partitions", str(p.names.partitions)] + (["--cluster"] if p.cluster else [])
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, preexec_fn=die_with_parent)


async def producer_result(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """Wait for the producer to exit; its JSON result."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("producer did not finish")
        await asyncio.sleep(0.05)
    out = proc.stdout.read() if proc.stdout else b""
    if proc.returncode != 0:
        raise RuntimeError(f"producer failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _account(p: Pipeline, published: int, invalid_every: int) -> None:
    bad = -(-published // invalid_every) if invalid_every else 0
    p.valid += published - bad
    p.invalid += bad


async def drain(p: Pipeline, timeout: float) -> dict[str, Any]:
    """Wait until every event published so far is stored and coached, or dead-lettered."""
    began = time.monotonic()
    snap = await snapshot(p)
    while time.monotonic() - began < timeout:
        if snap.rows >= p.valid and snap.coached >= p.valid and snap.dead >= p.invalid:
            break
        await asyncio.sleep(0.2)
        snap = await snapshot(p)
    return {
        "drained": snap.rows == p.valid and snap.coached >= p.valid and snap.dead == p.invalid,
        "lost": p.valid - snap.rows,
        "drain_s": round(time.monotonic() - began, 2),
    }


async def cpu_now(p: Pipeline, producer: int) -> dict[str, float]:
    """CPU seconds used so far by each service, the producer, and the Redis server."""
    found = {name: cpu_s(pid) for name, pid in (*p.pids.items(), ("producer", producer))}
    if p.redis_ports:
        found["redis"] = sum(redis_cpu_s(port) for port in p.redis_ports)
    else:
        found["redis"] = _cpu_of(await p.client.info("cpu"))
    return {name: value for name, value in found.items() if value is not None}


def _cpu_of(info: dict[str, Any]) -> float:
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_cpu_s(port: int) -> float:
    """CPU seconds the Redis server on a loopback port has used so far."""
    client = redis.Redis(port=port)
    try:
        return _cpu_of(client.info("cpu"))
    finally:
        client.close()


def cpu_per_event(
    before: dict[str, float], after: dict[str, float], events: int
) -> dict[str, float]:
    """CPU microseconds per finished event, by process (Redis: the whole shared server)."""
    if events <= 0:
        return {}
    return {k: round((after[k] - before[k]) / events * 1e6, 1) for k in after if k in before}


async def stage_counts(p: Pipeline) -> dict[str, StageMetrics]:
    """The stages' own counters (batches, entries, seconds in the handler)."""
    found = await read_stage_metrics(p.client, p.names, PIPELINE)
    return {m.stage: m for m in found}


def batching(before: dict[str, StageMetrics], after: dict[str, StageMetrics]) -> dict[str, Any]:
    """Per stage over a window: mean batch size and handler time per entry (us)."""
    found: dict[str, Any] = {}
    for stage, end in after.items():
        start = before.get(stage, StageMetrics(stage))
        batches, entries = end.batches - start.batches, end.entries - start.entries
        spent = end.seconds_sum - start.seconds_sum
        found[stage] = {
            "batches": batches,
            "mean_batch": rounded(entries / batches, 0) if batches else None,
            "handler_us_per_event": rounded(spent / entries * 1e6, 1) if entries else None,
        }
    return found


async def _window(p: Pipeline, seconds: float) -> list[Snap]:
    snaps = [await snapshot(p)]
    end = snaps[0].t + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        snaps.append(await snapshot(p))
    return snaps


async def sustained(
    p: Pipeline, seconds: float, warmup: float, prefix: str, invalid_every: int = 0
) -> dict[str, Any]:
    """Flat-out load for `warmup` + `seconds`; rates measured over the last `seconds`."""
    proc = spawn_producer(p, warmup + seconds + 1, prefix=prefix, invalid_every=invalid_every)
    try:
        await asyncio.sleep(warmup)
        cpu_before, counts_before = await cpu_now(p, proc.pid), await stage_counts(p)
        snaps = await _window(p, seconds)
        cpu_after, counts_after = await cpu_now(p, proc.pid), await stage_counts(p)
        offered = await producer_result(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    _account(p, int(offered["published"]), invalid_every)
    first, last = snaps[0], snaps[-1]
    span = last.t - first.t
    stored = rate(last.rows - first.rows, span)
    coach = rate(last.coached - first.coached, span)
    dead = rate(last.dead - first.dead, span)
    finished = min(last.rows - first.rows, last.coached - first.coached) + last.dead - first.dead
    return {
        "seconds": round(span, 2),
        "history_eps": rounded(stored, 0),
        "coach_eps": rounded(coach, 0),
        "dead_eps": rounded(dead, 0),
        "routed_eps": rounded(rate(last.rows + last.dead - first.rows - first.dead, span), 0),
        "eps": rounded(min(stored or 0.0, coach or 0.0), 0),
        "producer": {k: rounded(float(v), 1) for k, v in offered.items()},
        "cpu_us_per_event": cpu_per_event(cpu_before, cpu_after, finished),
        "stages": batching(counts_before, counts_after),
        "series": [(round(s.t - first.t, 1), s.rows, s.coached, s.dead) for s in snaps],
        **(await drain(p, timeout=120)),
    }


@dataclass
class Probes:
    """What the latency poller saw."""

    prefix: str
    published: dict[int, float] = field(default_factory=dict)
    """Probe sequence number -> publish time (epoch s), as stored in its row."""
    history_s: list[float] = field(default_factory=list)
    """Publish -> row visible in the history, per probe (s)."""
    marks: list[tuple[int, float]] = field(default_factory=list)
    """(latest probe merged into the coach state, when seen), in order."""
    after: Keyset | None = None
    last_fact: str | None = None

    def coach_s(self) -> list[float]:
        """Publish -> coach state holds the probe, per probe (s)."""
        merged = [m for m, _ in self.marks]
        found: list[float] = []
        for seq, sent in self.published.items():
            at = bisect.bisect_left(merged, seq)
            if at < len(merged):
                found.append(self.marks[at][1] - sent)
        return found


async def _poll_once(p: Pipeline, probes: Probes) -> None:
    rows = await p.history.probes_after(f"{probes.prefix}probe", probes.after)
    seen = time.time()
    for eid, sent, key in rows:
        probes.published[seq_of(probes.prefix, eid)] = sent
        probes.history_s.append(seen - sent)
        probes.after = key
    fact = await probe_fact(p.client, p.names)
    if fact is not None and fact.startswith(probes.prefix) and fact != probes.last_fact:
        probes.marks.append((seq_of(probes.prefix, fact), time.time()))
        probes.last_fact = fact


def _complete(probes: Probes, expected: int, last_seq: int) -> bool:
    return (
        len(probes.published) >= expected
        and bool(probes.marks)
        and (probes.marks[-1][0] >= last_seq)
    )


async def latency(p: Pipeline, offered: float, seconds: float, prefix: str) -> dict[str, Any]:
    """Probe latencies with `offered` events/s for `seconds`."""
    every = max(1, round(offered / PROBES_PER_S))
    counts_before = await stage_counts(p)
    proc = spawn_producer(p, seconds, rate=offered, probe_every=every, prefix=prefix)
    probes = Probes(prefix)
    deadline = time.monotonic() + seconds + 60
    result: dict[str, Any] | None = None
    try:
        while time.monotonic() < deadline:
            await _poll_once(p, probes)
            if result is None and proc.poll() is not None:
                result = await producer_result(proc, timeout=5)
            if result is not None:
                published = int(result["published"])
                if _complete(probes, -(-published // every), (published - 1) // every * every):
                    break
            await asyncio.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    published = int(result["published"]) if result else 0
    _account(p, published, 0)
    stages = batching(counts_before, await stage_counts(p))
    return {
        "offered_eps": rounded(offered, 0),
        "achieved_eps": rounded(float(result["eps"]), 0) if result else None,
        "probe_every": every,
        "history": summary_ms(probes.history_s),
        "coach": summary_ms(probes.coach_s()),
        "probes_missing": -(-published // every) - len(probes.published),
        "stages": stages,
        **(await drain(p, timeout=60)),
    }
