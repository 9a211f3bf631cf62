"""Coach stories' fixtures: a running coach worker, publishing envelopes, reading the cache,
and listening to the change channel. Everything runs against the machine's real Redis under the
test's own namespace (cleaned by the root `sync_client` fixture)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import redis.asyncio as aredis

from services.coach import reads
from services.coach.app import run_coach
from services.coach.handler import CoachStats
from shared.consumer import StreamWorker
from shared.models import CoachDocument, PulseEvent, RunEvent, Suggestion
from shared.settings import Settings
from tests.unit.coach.builders import body


async def eventually(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> None:
    """Poll an async predicate until true; fail the test at the deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} not met within {timeout}s")


@dataclass
class RunningCoach:
    """One coach worker running in this event loop."""

    stats: CoachStats
    stop: asyncio.Event
    task: asyncio.Task[StreamWorker]

    async def handled(self, count: int, timeout: float = 30.0) -> None:
        """Wait until the worker acknowledged `count` entries in total."""

        async def done() -> bool:
            if self.task.done():
                self.task.result()  # surface a crash instead of waiting for the deadline
            return self.stats.entries >= count

        await eventually(done, timeout, f"{count} entries handled")

    async def finish(self) -> StreamWorker:
        """Stop the worker (it finishes its batch) and return it."""
        self.stop.set()
        return await self.task


@pytest.fixture
async def start_coach(
    settings: Settings, async_client: aredis.Redis
) -> AsyncIterator[Callable[..., RunningCoach]]:
    """Start coach workers (each its own consumer); all are stopped at the end of the test."""
    running: list[RunningCoach] = []

    def start(consumer: str | None = None, config: Settings | None = None) -> RunningCoach:
        stop, stats = asyncio.Event(), CoachStats()
        name = consumer or f"coach-test-{len(running)}"
        task = asyncio.create_task(run_coach(config or settings, stop, name, stats))
        running.append(RunningCoach(stats, stop, task))
        return running[-1]

    yield start
    for coach in running:
        coach.stop.set()
    await asyncio.gather(*(c.task for c in running), return_exceptions=True)


async def publish(
    client: aredis.Redis, settings: Settings, events: Iterable[RunEvent | PulseEvent]
) -> list[str]:
    """XADD each event's valid-stream envelope (as the validator writes it), in one pipeline."""
    async with client.pipeline(transaction=False) as pipe:
        for ev in events:
            pipe.xadd(settings.names.valid, {b"__data__": body(ev)})
        ids = await pipe.execute()
    return [i.decode() for i in ids]


async def publish_bodies(client: aredis.Redis, settings: Settings, bodies: list[bytes]) -> None:
    """XADD raw ``__data__`` bodies to the valid stream."""
    async with client.pipeline(transaction=False) as pipe:
        for raw in bodies:
            pipe.xadd(settings.names.valid, {b"__data__": raw})
        await pipe.execute()


async def document(
    client: aredis.Redis, settings: Settings, project: int, stage: str
) -> CoachDocument | None:
    """The cached document, through the reads library the API serves."""
    return await reads.get_document(client, settings.names, project, stage)


async def cached(
    client: aredis.Redis, settings: Settings, project: int, stage: str
) -> list[Suggestion]:
    """The cached suggestions (empty when there is no document)."""
    doc = await document(client, settings, project, stage)
    return doc.suggestions if doc else []


@dataclass
class Listener:
    """A subscriber to the coach change channel."""

    client: aredis.Redis
    channel: str
    pubsub: Any = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def start(self) -> None:
        """Subscribe (and wait for the confirmation, so nothing published after is missed)."""
        self.pubsub = self.client.pubsub()
        await self.pubsub.subscribe(self.channel)
        confirm = await self.pubsub.get_message(timeout=5.0)
        assert confirm is not None and confirm["type"] == "subscribe"

    async def drain(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Every announcement so far: publishes a marker and reads up to it (no guessing)."""
        marker = f"marker-{time.monotonic_ns()}"
        await self.client.publish(self.channel, marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                continue
            data = msg["data"]
            if data == marker.encode():
                return self.seen
            self.seen.append(orjson.loads(data))
        raise AssertionError("the marker never came back on the channel")

    async def close(self) -> None:
        """Unsubscribe."""
        await self.pubsub.aclose()


@pytest.fixture
async def listener(settings: Settings, async_client: aredis.Redis) -> AsyncIterator[Listener]:
    """A subscriber to `names.coach_changes`, subscribed before the test acts."""
    sub = Listener(async_client, settings.names.coach_changes)
    await sub.start()
    yield sub
    await sub.close()
