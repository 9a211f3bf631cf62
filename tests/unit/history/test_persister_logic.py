"""The persister's pure logic and its handler, with a fake store and a fake context."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from services.history.base import StoreRejected, StoreUnavailable
from services.history.records import Record
from services.persister.io import Persister
from services.persister.logic import MALFORMED, REJECTED, isolate, parse_batch, store_backoff
from shared.consumer import Entry
from shared.metrics import BatchCounts, Totals
from shared.settings import Settings
from shared.wire import DATA_FIELD


def entry(i: int, event_id: str | None = None, data: bytes | None = None) -> Entry:
    if data is None:
        doc = {
            "event_id": event_id or f"e{i}", "dialect": "pulse", "taxonomy_version": "tx",
            "accepted_at": "2026-03-01T00:00:00Z", "source_id": f"{i}-0",
            "event": {"run_id": "r", "event_type": "run.completed", "severity": "info",
                      "created_at": "2026-03-01T00:00:00Z"},
        }  # fmt: skip
        data = orjson.dumps(doc)
    return Entry(id=f"{i}-0", fields={DATA_FIELD: data}, deliveries=1)


# --- pure logic ---------------------------------------------------------------------


def test_parse_batch_separates_envelopes_from_garbage() -> None:
    no_data = Entry(id="9-0", fields={b"x": b"y"}, deliveries=1)
    batch = parse_batch([entry(1), entry(2, data=b"{nope"), no_data, entry(3, data=b"[]")])
    assert [e.id for e, _ in batch.good] == ["1-0"]
    assert [(e.id, codes) for e, codes, _ in batch.malformed] == [
        ("2-0", [MALFORMED]), ("9-0", [MALFORMED]), ("3-0", [MALFORMED]),
    ]  # fmt: skip
    assert all(message for _, _, message in batch.malformed)


async def test_isolate_stores_everything_when_nothing_is_refused() -> None:
    calls: list[list[int]] = []

    async def insert(part: list[int]) -> int:
        calls.append(part)
        return len(part)

    result = await isolate(list(range(10)), insert)
    assert result.stored == list(range(10)) and result.inserted == 10 and calls == [list(range(10))]


@pytest.mark.parametrize("poison", [{0}, {999}, {3, 500}, set(range(0, 1000, 97))])
async def test_isolate_bisects_down_to_each_refused_item(poison: set[int]) -> None:
    calls = 0

    async def insert(part: list[int]) -> int:
        nonlocal calls
        calls += 1
        if poison & set(part):  # one transaction: any poison fails the whole part
            raise StoreRejected(f"bad {sorted(poison & set(part))}")
        return len(part)

    items = list(range(1000))
    result = await isolate(items, insert)
    assert sorted(result.stored) == sorted(set(items) - poison)
    assert sorted(i for i, _ in result.rejected) == sorted(poison)
    assert all(msg == f"bad [{i}]" for i, msg in result.rejected)
    assert calls <= 1 + len(poison) * 2 * 10  # about 2·log2(n) per poison item


def test_backoff_grows_then_caps() -> None:
    policy = store_backoff(cap_s=2.0)
    ceilings = [policy.ceiling(n) for n in range(10)]
    assert ceilings[:3] == [0.05, 0.1, 0.2] and ceilings[-1] == 2.0
    assert ceilings == sorted(ceilings) and store_backoff(cap_s=5.0).ceiling(10**6) == 5.0
    # and each delay is drawn below its ceiling (full jitter)
    rng = random.Random(12)
    assert all(0 <= policy.delay(n, rng) < policy.ceiling(n) for n in range(10) for _ in range(50))


# --- the handler, with fakes --------------------------------------------------------


@dataclass
class FakeClient:
    claims: list[list[Any]] = field(default_factory=list)

    async def xclaim(self, *args: Any, **kwargs: Any) -> list[Any]:
        assert kwargs == {"justid": True} and args[3] == 0
        self.claims.append(list(args[4]))
        return []


@dataclass
class FakeContext:
    stream: str = "{t}:valid"
    group: str = "persister"
    consumer: str = "persister-test"
    stage: str = "persister"
    client: FakeClient = field(default_factory=FakeClient)
    acked: list[str] = field(default_factory=list)
    dead: list[tuple[str, list[str], str]] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)

    @property
    def counts(self) -> BatchCounts:
        """Straight into the totals: here the batch always completes (the worker's job)."""
        return BatchCounts(self.totals.counters, self.totals.reasons)

    def count(self, name: str, amount: int = 1) -> None:
        self.counts.count(name, amount)

    async def ack(self, ids: Sequence[str]) -> None:
        self.acked += ids

    async def dead_letter(self, rejects: Sequence[tuple[Entry, list[str], str]]) -> int:
        self.dead += [(e.id, codes, msg) for e, codes, msg in rejects]
        for _, codes, _ in rejects:
            self.counts.dead_letter(codes)
        return len(rejects)


@dataclass
class FakeStore:
    """Down for `outages` calls, refuses event ids in `poison`, dedups on event id."""

    outages: int = 0
    poison: set[str] = field(default_factory=set)
    rows: set[str] = field(default_factory=set)
    calls: int = 0

    async def insert_records(self, records: Sequence[Record]) -> int:
        self.calls += 1
        if self.outages > 0:
            self.outages -= 1
            raise StoreUnavailable("connection refused")
        ids = {r.event_id for r in records}
        if ids & self.poison:
            raise StoreRejected(f"refused {sorted(ids & self.poison)}")
        new = ids - self.rows
        self.rows |= new
        return len(new)


def persister(store: FakeStore, stop: asyncio.Event | None = None) -> Persister:
    settings = Settings(history_retry_max_s=0.01, _env_file=None)  # type: ignore[call-arg]
    return Persister(store, settings, stop or asyncio.Event())  # type: ignore[arg-type]


async def test_the_batch_is_acknowledged_only_after_it_is_stored() -> None:
    store, ctx = FakeStore(), FakeContext()
    p = persister(store)
    await p.handle([entry(1), entry(2), entry(3, event_id="e1")], ctx)  # type: ignore[arg-type]
    assert ctx.acked == ["1-0", "2-0", "3-0"] and store.rows == {"e1", "e2"}
    assert (p.inserted, p.duplicates) == (2, 1) and ctx.dead == []


async def test_an_unavailable_store_is_retried_without_acknowledging_meanwhile() -> None:
    store, ctx = FakeStore(outages=4), FakeContext()
    p = persister(store)
    await p.handle([entry(1), entry(2)], ctx)  # type: ignore[arg-type]
    assert store.calls == 5 and ctx.acked == ["1-0", "2-0"] and not p.down
    # the held entries were re-claimed on every retry, so no janitor takes them
    assert ctx.client.claims == [["1-0", "2-0"]] * 4


async def test_stopping_during_an_outage_leaves_the_batch_pending() -> None:
    store, ctx, stop = FakeStore(outages=10**6), FakeContext(), asyncio.Event()
    p = persister(store, stop)
    task = asyncio.create_task(p.handle([entry(1)], ctx))  # type: ignore[arg-type]
    deadline = asyncio.get_running_loop().time() + 10
    while store.calls < 3:
        assert asyncio.get_running_loop().time() < deadline, "the store was never retried"
        await asyncio.sleep(0.001)
    assert p.down and not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert ctx.acked == [] and ctx.dead == [] and store.rows == set()


async def test_poison_rows_are_dead_lettered_and_the_rest_stored() -> None:
    store, ctx = FakeStore(poison={"e2", "e5"}), FakeContext()
    p = persister(store)
    batch = [entry(i) for i in range(8)] + [entry(99, data=b"garbage")]
    await p.handle(batch, ctx)  # type: ignore[arg-type]
    assert store.rows == {f"e{i}" for i in (0, 1, 3, 4, 6, 7)}
    assert sorted(ctx.acked) == sorted(f"{i}-0" for i in (0, 1, 3, 4, 6, 7))
    dead = {eid: (codes, msg) for eid, codes, msg in ctx.dead}
    assert dead["99-0"][0] == [MALFORMED]
    assert dead["2-0"] == ([REJECTED], "refused ['e2']")
    assert dead["5-0"] == ([REJECTED], "refused ['e5']")
    assert (p.rejected, p.malformed, p.inserted) == (2, 1, 6)


async def test_start_retries_until_the_store_opens() -> None:
    attempts = 0

    class Flaky(FakeStore):
        async def open(self) -> None:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise StoreUnavailable("not yet")

        async def migrate(self) -> list[int]:
            return [1]

    p = persister(Flaky())
    assert await p.start() is True and attempts == 3 and not p.down
    stop = asyncio.Event()
    stop.set()

    class Never(Flaky):
        async def open(self) -> None:
            raise StoreUnavailable("never")

    assert await persister(Never(), stop).start() is False
