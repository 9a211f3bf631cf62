"""Helpers for validator stories: publish raw entries, run the validator, read the outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
import redis

from services.validator.app import run_validator
from shared.settings import Settings
from shared.wire import parse_dead_letter, parse_envelope


def good_event(**overrides: Any) -> dict[str, Any]:
    """A valid BrewSLM RunEvent document."""
    event: dict[str, Any] = {
        "project_id": 7,
        "run_id": "exp-42",
        "stage": "training",
        "severity": "info",
        "ts": "2026-05-01T12:00:00Z",
    }
    event.update(overrides)
    return event


def xadd_raw(client: redis.Redis, stream: str, bodies: Iterable[bytes]) -> list[str]:
    """XADD each body as the __data__ field, in one pipeline; returns entry ids."""
    with client.pipeline(transaction=False) as pipe:
        for body in bodies:
            pipe.xadd(stream, {b"__data__": body})
        return [i.decode() for i in pipe.execute()]


def outcome(client: redis.Redis, settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(valid envelopes by source id, dead letters by source id) — asserting no duplicates."""
    valid: dict[str, Any] = {}
    for _, fields in client.xrange(settings.names.valid):
        env = parse_envelope(fields[b"__data__"])
        assert env.source_id not in valid, f"{env.source_id} twice on valid"
        valid[env.source_id] = env
    dead: dict[str, Any] = {}
    for _, fields in client.xrange(settings.names.dead):
        letter = parse_dead_letter(fields)
        assert letter.source_id not in dead, f"{letter.source_id} twice on dead"
        dead[letter.source_id] = letter
    assert not set(valid) & set(dead), "an entry is on both valid and dead"
    return valid, dead


def routed(client: redis.Redis, settings: Settings) -> int:
    """Entries that reached valid or dead so far."""
    return int(client.xlen(settings.names.valid)) + int(client.xlen(settings.names.dead))


def validate_all(
    client: redis.Redis, settings: Settings, expected: int, timeout: float = 30
) -> None:
    """Run the validator in-process until `expected` entries are routed, then stop it."""
    asyncio.run(route(client, settings, expected, timeout))


async def route(
    client: redis.Redis, settings: Settings, expected: int, timeout: float = 30
) -> None:
    """`validate_all` in a running loop: the real validator until `expected` entries are
    routed (valid or dead), then stopped."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_validator(settings, stop))
    deadline = time.monotonic() + timeout
    while routed(client, settings) < expected:
        if task.done() or time.monotonic() > deadline:
            stop.set()
            await task
            raise AssertionError(f"routed {routed(client, settings)} of {expected}")
        await asyncio.sleep(0.02)
    stop.set()
    await task


def dumps(doc: Any) -> bytes:
    """JSON bytes."""
    return orjson.dumps(doc)
