"""Dead-letter tools on a big stream: stats scans 100k entries in chunks, tail reads only a few.

The default size keeps the suite quick; the 100k variant is `slow` (make test-faults / -m slow).
"""

from __future__ import annotations

import time

import pytest
import redis
import redis.asyncio as aredis

from services.ops.deadletters import dead_letter_stats, list_dead_letters, match_dead_letters
from services.ops.models import DeadLetterFilter
from shared.settings import Settings
from tests.unit.ops.builders import dead_fields

pytestmark = pytest.mark.integration

KINDS = (
    ["invalid_reason_code:x"],
    ["malformed_json"],
    ["invalid_reason_code:y", "missing_reason_code"],
    ["persist_rejected"],
)


def seed(client: redis.Redis, settings: Settings, n: int) -> None:
    fields = [dead_fields(k, source_stream=settings.names.events) for k in KINDS]
    for start in range(0, n, 5000):
        with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 5000)):
                pipe.xadd(settings.names.dead, fields[i % len(KINDS)])  # type: ignore[arg-type]
            pipe.execute()


@pytest.mark.parametrize("n", [10_000, pytest.param(100_000, marks=pytest.mark.slow)])
async def test_stats_and_tail_stay_fast_on_a_big_stream(
    async_client: aredis.Redis, sync_client: redis.Redis, settings: Settings, n: int
) -> None:
    # Given n dead letters of four kinds
    seed(sync_client, settings, n)
    # When counted
    started = time.perf_counter()
    stats = await dead_letter_stats(async_client, settings.names)
    elapsed = time.perf_counter() - started
    print(f"stats of {n} dead letters: {elapsed:.2f}s")
    # Then every one is counted, in a time linear in n (a loose bound: shared, loaded machines)
    assert (stats.length, stats.scanned) == (n, n)
    assert {c.key: c.count for c in stats.by_family} == {
        "invalid_reason_code": n // 2,
        "malformed_json": n // 4,
        "missing_reason_code": n // 4,
        "persist_rejected": n // 4,
    }
    assert elapsed < 5 + n * 300e-6
    # And a tail of 20 of a rare-enough family reads a few chunks, not the whole stream
    started = time.perf_counter()
    page = await list_dead_letters(async_client, settings.names, reasons=["persist_rejected"])
    assert len(page.items) == 20
    assert time.perf_counter() - started < 2
    # And selecting for a redrive finds them all
    selection = await match_dead_letters(
        async_client, settings.names, DeadLetterFilter(reasons=("malformed_json",))
    )
    assert len(selection.ids) == n // 4
