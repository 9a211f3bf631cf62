"""The persister's pure logic: parsing a batch, isolating poison rows, the retry policy.

Nothing here talks to Redis or a database; `isolate` takes the insert as a callable, so its
bisection is tested with a fake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from services.history.base import StoreRejected
from services.history.records import Record, decode_envelope, record_of_envelope
from shared.consumer import Entry
from shared.retry import Backoff
from shared.valid_stream import DecodeError

MALFORMED = "persist_malformed_envelope"
REJECTED = "persist_rejected"

T = TypeVar("T")
#: (entry, error codes, message): what `BatchContext.dead_letter` takes.
Reject = tuple[Entry, list[str], str]


@dataclass(slots=True)
class ParsedBatch:
    """A batch split into records to store, events that are not well formed, and entries that
    are not envelopes at all."""

    good: list[tuple[Entry, Record]] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)
    malformed: list[Reject] = field(default_factory=list)


def parse_batch(entries: Sequence[Entry]) -> ParsedBatch:
    """Decode each entry's ``__data__`` as an envelope, then its event as a history record.

    The valid stream is the validator's (nothing is validated twice): decoding only checks
    the shape. A body that is no envelope is ``persist_malformed_envelope``; an envelope whose
    event has no record is ``persist_rejected``, as a row the database refused.
    """
    batch = ParsedBatch()
    times: dict[datetime, datetime] = {}  # a batch shares its accept times: convert once
    for entry in entries:
        data = entry.data
        if data is None:
            batch.malformed.append((entry, [MALFORMED], "entry has no __data__ field"))
            continue
        try:
            envelope = decode_envelope(data)
        except DecodeError as exc:
            batch.malformed.append((entry, [MALFORMED], _first_line(str(exc))))
            continue
        try:
            batch.good.append((entry, record_of_envelope(envelope, times)))
        except StoreRejected as exc:
            batch.rejected.append((entry, [REJECTED], _first_line(str(exc))))
    return batch


def _first_line(text: str, limit: int = 500) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unparseable envelope"
    return line[:limit]


@dataclass(slots=True)
class Isolated(Generic[T]):
    """Outcome of `isolate`: items stored (or already there) and items refused on their own."""

    stored: list[T] = field(default_factory=list)
    rejected: list[tuple[T, str]] = field(default_factory=list)
    inserted: int = 0


async def isolate(items: list[T], insert: Callable[[list[T]], Awaitable[int]]) -> Isolated[T]:
    """Insert `items`; when the store refuses, bisect until each refused item stands alone.

    A batch with one poison row costs about 2·log2(n) extra transactions, and every other row
    is stored. `insert` must be all-or-nothing (one transaction) and idempotent.
    """
    result: Isolated[T] = Isolated()
    pending = [items]
    while pending:
        part = pending.pop()
        try:
            result.inserted += await insert(part)
            result.stored.extend(part)
        except StoreRejected as exc:
            if len(part) == 1:
                result.rejected.append((part[0], str(exc)))
            else:
                middle = len(part) // 2
                pending += [part[middle:], part[:middle]]  # first half is popped first
    return result


def store_backoff(cap_s: float) -> Backoff:
    """Retrying an unavailable database: up to 50 ms, doubling per failure, at most `cap_s`.

    `cap_s` is ``history_retry_max_s``; every delay is jittered below its ceiling.
    """
    return Backoff(base_s=0.05, cap_s=cap_s)
