"""Pure parts of the ops tools: reason filters, record conversion, redrive fields, rate limiting.

Nothing here touches Redis, so all of it is unit-tested directly.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError

from services.ops.errors import InvalidReasonFilter
from services.ops.models import Count, DeadLetterLine, DeadLetterRecord
from services.ops.payload import view_values
from shared.error_codes import code_family
from shared.models import DeadLetter
from shared.wire import (
    DATA_FIELD,
    DEAD_LETTERS,
    ORIGIN_ID_FIELD,
    REDRIVEN_FROM_FIELD,
    Fields,
    as_text,
    entry_time,
    parse_dead_letter,
)

#: Error code given to an entry of the dead-letter stream that is not a well-formed dead letter.
UNREADABLE = "unreadable_dead_letter"
#: Fields a redrive sets itself; an original field of the same name is superseded.
_PROVENANCE = frozenset({REDRIVEN_FROM_FIELD, ORIGIN_ID_FIELD, DATA_FIELD})


# --- reason codes -------------------------------------------------------------------------


#: A reason filter as a user types it: a code family, optionally ``:detail``
#: (``invalid_reason_code`` or ``invalid_reason_code:foo``). Every error code is snake case of
#: two words or more (docs/contract.md), so ``false`` or ``42`` can match no code: refused.
REASON_FILTER_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)+(:[\s\S]*)?$"


_REASON_FILTER = re.compile(REASON_FILTER_PATTERN)


def check_reason_filters(reasons: Sequence[str]) -> tuple[str, ...]:
    """`reasons` when each could match a code; `InvalidReasonFilter` for the first that cannot."""
    for reason in reasons:
        if not _REASON_FILTER.match(reason):
            raise InvalidReasonFilter(
                f"reason: {reason[:60]!r} is not an error code or family "
                "(snake case, e.g. invalid_reason_code or invalid_reason_code:training_oom)",
                field="reason",
            )
    return tuple(reasons)


def matches_reason(errors: Iterable[str], reasons: Sequence[str]) -> bool:
    """True when any error is one of `reasons` or belongs to one of them as a family.

    ``invalid_reason_code`` matches ``invalid_reason_code:foo``; ``invalid_reason_code:foo``
    matches only itself. No reasons match everything.
    """
    if not reasons:
        return True
    return any(
        code == reason or code.startswith(reason + ":") for code in errors for reason in reasons
    )


# Scans of 100k dead letters see few distinct `errors` values: decode and match each once.
@lru_cache(maxsize=65536)
def parse_errors(raw: bytes) -> tuple[str, ...]:
    """Error codes from a raw ``errors`` field; ``(unreadable_dead_letter,)`` when unreadable."""
    try:
        codes = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return (UNREADABLE,)
    if isinstance(codes, list) and codes and all(isinstance(c, str) for c in codes):
        return tuple(codes)
    return (UNREADABLE,)


def errors_of(fields: Fields) -> list[str]:
    """The error codes of a dead-letter entry; ``[unreadable_dead_letter]`` when it has none."""
    return list(parse_errors(DEAD_LETTERS.raw(fields, "errors")))


@lru_cache(maxsize=65536)
def _raw_matches(raw: bytes, reasons: tuple[str, ...]) -> bool:
    return matches_reason(parse_errors(raw), reasons)


def entry_matches(fields: Fields, reasons: Sequence[str]) -> bool:
    """True when the dead-letter entry has an error matching `reasons` (see matches_reason)."""
    return not reasons or _raw_matches(DEAD_LETTERS.raw(fields, "errors"), tuple(reasons))


def hint_of_fields(fields: Fields) -> dict[str, str]:
    """The ``hint`` field of a dead-letter entry (best-effort fields of the body)."""
    try:
        hint = orjson.loads(DEAD_LETTERS.raw(fields, "hint"))
    except orjson.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in hint.items()} if isinstance(hint, dict) else {}


# --- entry ids and time windows ------------------------------------------------------------


def id_ms(entry_id: str) -> int:
    """The millisecond part of a stream entry id."""
    return int(entry_id.split("-", 1)[0])


def ms_of(moment: datetime) -> int:
    """Milliseconds since the epoch, as in entry ids."""
    return int(moment.timestamp() * 1000)


def age_s(entry_id: str | None, now: datetime) -> float | None:
    """Age of an entry, from the time in its id."""
    if entry_id is None:
        return None
    return max(0.0, (ms_of(now) - id_ms(entry_id)) / 1000)


def window(
    now: datetime, since: timedelta | None, before: timedelta | None
) -> tuple[str, str] | None:
    """XRANGE bounds of dead letters younger than `since` and older than `before`.

    None when no id can be in the window (older than the epoch): Redis refuses the bound
    ``(0-0``. A `since` reaching past the epoch is the whole stream.
    """
    low = "-"
    if since is not None and (start := ms_of(now - since)) > 0:
        low = f"{start}-0"
    high = "+"
    if before is not None:
        end = ms_of(now - before)
        if end <= 0:
            return None
        high = f"({end}-0"
    return low, high


# --- records --------------------------------------------------------------------------------


def record_of(entry_id: str, fields: Fields) -> DeadLetterRecord:
    """A dead-letter entry as a JSON-safe record; never raises (see `readable`)."""
    try:
        letter = parse_dead_letter(fields)
    except (KeyError, ValueError, TypeError, ValidationError) as exc:
        return _unreadable_record(entry_id, fields, exc)
    return DeadLetterRecord(id=entry_id, **view_values(DeadLetter, dict(letter)))


def _unreadable_record(entry_id: str, fields: Fields, exc: Exception) -> DeadLetterRecord:
    # Someone wrote a foreign entry to the dead stream (or a future version a different one):
    # show what is there rather than crash the whole tail. Text fields never fail to decode.
    original = DEAD_LETTERS.key("original")
    moment = entry_time(entry_id)
    values = {name: DEAD_LETTERS.field(fields, name) for name in DEAD_LETTERS.names(str)} | {
        "errors": errors_of(fields),
        "message": f"not a well-formed dead letter ({type(exc).__name__}: {exc})"[:500],
        "original": DEAD_LETTERS.raw(fields, "original"),
        # surrogateescape: a name that is not UTF-8 keeps its bytes (the view escapes them)
        "original_fields": {
            k.decode("utf-8", "surrogateescape"): v for k, v in fields.items() if k != original
        },
        "delivery_count": 0,
        "first_seen": moment,
        "dead_at": moment,
        "hint": hint_of_fields(fields),
    }
    return DeadLetterRecord(id=entry_id, **view_values(DeadLetter, values), readable=False)


def _line(
    entry_id: str, errors: list[str], hint: dict[str, str], values: dict[str, str]
) -> DeadLetterLine:
    return DeadLetterLine(
        id=entry_id,
        dead_at=entry_time(entry_id.rpartition(":")[2]),  # a qualified id's entry part
        errors=errors,
        stage=values["stage"],
        source_stream=values["source_stream"],
        source_id=values["source_id"],
        event_kind=hint.get("event_type") or hint.get("stage") or "",
        project_id=hint.get("project_id", ""),
        run_id=hint.get("run_id", ""),
        summary=hint.get("summary") or hint.get("message") or values["message"],
    )


def line_of(entry_id: str, fields: Fields) -> DeadLetterLine:
    """The one-line summary of a dead-letter entry, read without decoding its payload."""
    values = {
        name: DEAD_LETTERS.field(fields, name)
        for name in ("stage", "source_stream", "source_id", "message")
    }
    return _line(entry_id, errors_of(fields), hint_of_fields(fields), values)


def line_of_record(record: DeadLetterRecord) -> DeadLetterLine:
    """The one-line summary of a record."""
    values = {
        "stage": record.stage,
        "source_stream": record.source_stream,
        "source_id": record.source_id,
        "message": record.message,
    }
    return _line(record.id, record.errors, record.hint, values)


# --- redrive ------------------------------------------------------------------------------


def redrive_fields(dead_id: str, fields: Fields) -> Fields:
    """The entry a dead letter becomes again on the target stream.

    ``__data__`` is the original bytes, unchanged (left out when the source entry had no body
    but other fields); the source entry's other fields are restored under their own names; and
    two provenance fields say where it came from: ``redriven_from`` (this dead letter) and
    ``origin_source_id`` (the entry id the event first had — kept across repeated redrives, so
    the validator derives the same event id every time).
    """
    original = DEAD_LETTERS.raw(fields, "original")
    originals = DEAD_LETTERS.originals(fields)
    restored = {name: value for name, value in originals.items() if name not in _PROVENANCE}
    out: Fields = {}
    if original or not restored:
        out[DATA_FIELD] = original
    out.update(restored)
    out[REDRIVEN_FROM_FIELD] = dead_id.encode()
    origin = originals.get(ORIGIN_ID_FIELD) or DEAD_LETTERS.raw(fields, "source_id")
    if origin:
        out[ORIGIN_ID_FIELD] = origin
    return out


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: the first non-empty ``{...}``, else the key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


class TokenBucket:
    """Rate limiter: `rate` tokens a second, bursts of at most `capacity`.

    Reservation style: a take always succeeds at once and may leave the bucket in debt; the
    caller then waits until the debt is repaid. So a caller never spins on a float that is a
    hair short, and over any span t at most ``capacity + rate * t`` tokens are taken. The
    clock and the sleep are injected so tests run on simulated time.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # A tenth of a second's worth: smooth enough for a progress bar, few round trips.
        self.capacity = capacity if capacity is not None else max(1.0, rate / 10)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()

    def reserve(self, n: float) -> float:
        """Take `n` tokens now; returns the seconds to wait before using them (0 if none)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def take(self, n: float) -> None:
        """Take `n` tokens, waiting as long as the rate requires."""
        wait = self.reserve(n)
        if wait > 0:
            await self._sleep(wait)

    @property
    def batch(self) -> int:
        """How many to take at once: a burst's worth (at least one)."""
        return max(1, int(self.capacity))


# --- stats --------------------------------------------------------------------------------


def _counts(counter: Counter[str]) -> list[Count]:
    return [
        Count(key=k, count=n) for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _decoded(raw: Counter[bytes]) -> Counter[str]:
    out: Counter[str] = Counter()
    for value, n in raw.items():
        out[as_text(value) or "?"] += n
    return out


@dataclass
class StatsTally:
    """Running counts of dead letters by reason code and by source (a letter counts once).

    Counts raw field values while scanning (a dict increment per field) and decodes each
    distinct value once at the end: the scan of 100k entries is bound by Redis's reply, not this.
    """

    scanned: int = 0
    _errors: Counter[bytes] = field(default_factory=Counter)
    _stages: Counter[bytes] = field(default_factory=Counter)
    _sources: Counter[bytes] = field(default_factory=Counter)

    def add(self, fields: Fields) -> None:
        """Count one dead-letter entry."""
        self.scanned += 1
        self._errors[DEAD_LETTERS.raw(fields, "errors")] += 1
        self._stages[DEAD_LETTERS.raw(fields, "stage")] += 1
        self._sources[DEAD_LETTERS.raw(fields, "source_stream")] += 1

    def absorb(self, other: StatsTally) -> None:
        """Add another tally's counts (one partition's) to this one."""
        self.scanned += other.scanned
        self._errors.update(other._errors)
        self._stages.update(other._stages)
        self._sources.update(other._sources)

    def as_dict(self) -> dict[str, Any]:
        """The counts as lists of `Count`, most frequent first."""
        by_code: Counter[str] = Counter()
        by_family: Counter[str] = Counter()
        for raw, n in self._errors.items():
            codes = set(parse_errors(raw))
            for code in codes:
                by_code[code] += n
            for family in {code_family(code) for code in codes}:
                by_family[family] += n
        return {
            "scanned": self.scanned,
            "by_family": _counts(by_family),
            "by_code": _counts(by_code),
            "by_stage": _counts(_decoded(self._stages)),
            "by_source_stream": _counts(_decoded(self._sources)),
        }


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
