"""The persister's effects: insert a batch into the history, acknowledge after the commit.

- Database unavailable: nothing is acknowledged; the same batch is retried with jittered
  exponential backoff (`store_backoff`) until it succeeds or the service stops (logged once
  per state change: `history_unavailable`, `history_recovered`). Meanwhile the
  batch's entries are re-claimed (``XCLAIM ... JUSTID``: no delivery counted) so no janitor
  takes them as abandoned and burns their delivery attempts.
- Database refuses rows: the batch is bisected; each row refused on its own is dead-lettered
  (``persist_rejected``); the others are stored and acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError
from redis.typing import StreamIdT

from services.history.base import HistoryStore, StoreUnavailable
from services.history.records import Record
from services.persister.logic import MALFORMED, REJECTED, isolate, parse_batch, store_backoff
from shared.consumer import BatchContext, Entry, sleep_unless_stopped
from shared.logging import get_logger
from shared.metrics import Totals
from shared.retry import OutageLog
from shared.settings import Settings

log = get_logger("runbus.persister")

Pair = tuple[Entry, Record]
T = TypeVar("T")
#: Entries a retry loop holds: re-claimed on every retry so they do not look abandoned.
Held = tuple[BatchContext, list[str]]


class Stopped(Exception):
    """The service is stopping while the database is still unavailable."""


class Persister:
    """The batch handler of the persister, with its store.

    It reports ``persisted`` and ``duplicates`` through its batch context; its totals are the
    worker's, which count those and the dead letters (`persister_closed` logs them).
    """

    def __init__(self, store: HistoryStore, settings: Settings, stop: asyncio.Event) -> None:
        self.store = store
        self.settings = settings
        self.stop = stop
        self.backoff = store_backoff(settings.history_retry_max_s)
        self.outage = OutageLog(log, "history_unavailable", "history_recovered")
        self.totals = Totals()  # replaced by the worker's at the first batch

    @property
    def down(self) -> bool:
        """True while the database is unavailable."""
        return self.outage.is_down

    @property
    def inserted(self) -> int:
        """Rows inserted."""
        return self.totals.counters["persisted"]

    @property
    def duplicates(self) -> int:
        """Entries whose event was stored already (a redelivery)."""
        return self.totals.counters["duplicates"]

    @property
    def rejected(self) -> int:
        """Rows the database refused on their own, dead-lettered."""
        return self.totals.reasons[REJECTED]

    @property
    def malformed(self) -> int:
        """Entries that were not envelopes, dead-lettered."""
        return self.totals.reasons[MALFORMED]

    async def start(self) -> bool:
        """Open the store (and migrate when configured), retrying; False if stopped first."""

        async def ready() -> None:
            await self.store.open()
            if self.settings.migrate_on_start:
                applied = await self.store.migrate()
                if applied:
                    log.info("history_migrated", versions=applied)

        try:
            await self._retrying(ready, None)
        except Stopped:
            return False
        return True

    async def handle(self, entries: list[Entry], ctx: BatchContext) -> None:
        """Store a batch: malformed entries and poison rows to the dead-letter stream."""
        self.totals = ctx.totals
        batch = parse_batch(entries)
        for rejects, code in ((batch.malformed, MALFORMED), (batch.rejected, REJECTED)):
            if rejects:
                await ctx.dead_letter(rejects)
                log.warning("entries_dead_lettered", code=code, count=len(rejects))
        if not batch.good:
            return
        try:
            result = await isolate(batch.good, lambda part: self._insert(part, ctx))
        except Stopped:
            return  # left pending: this consumer re-reads them at its next start
        if result.rejected:
            await ctx.dead_letter([(e, [REJECTED], msg) for (e, _), msg in result.rejected])
            log.warning("entries_dead_lettered", code=REJECTED, count=len(result.rejected))
        await ctx.ack([entry.id for entry, _ in result.stored])
        ctx.count("persisted", result.inserted)
        ctx.count("duplicates", len(result.stored) - result.inserted)

    async def _insert(self, part: list[Pair], ctx: BatchContext) -> int:
        records = [record for _, record in part]
        ids = [entry.id for entry, _ in part]
        return await self._retrying(lambda: self.store.insert_records(records), (ctx, ids))

    async def _retrying(self, call: Callable[[], Awaitable[T]], held: Held | None) -> T:
        """Call until it does not raise `StoreUnavailable`; `Stopped` if the service stops."""
        attempt = 0
        while True:
            try:
                result = await call()
            except StoreUnavailable as exc:
                self.outage.down(exc)
            else:
                self.outage.up()
                return result
            if await sleep_unless_stopped(self.stop, self.backoff.delay(attempt)):
                raise Stopped
            attempt += 1
            if held is not None:
                await _keep(*held)


async def _keep(ctx: BatchContext, ids: list[str]) -> None:
    """Reset the idle time of entries we still hold (JUSTID: no delivery is counted)."""
    try:
        held: list[StreamIdT] = list(ids)
        await ctx.client.xclaim(ctx.stream, ctx.group, ctx.consumer, 0, held, justid=True)
    except (RedisError, OSError) as exc:  # Redis down too: the worker reports that
        log.debug("reclaim_failed", error=str(exc))
