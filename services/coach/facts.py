"""Facts: the coach's per-project state, and the one merge rule that makes it order-free.

Several consumers reorder a run's events, and any event may be delivered twice or replayed, so
the state must not depend on arrival order nor on how often an event was seen. The state of a
project is therefore a set of *facts*, each under a key:

- a fact carries the time of the event that produced it (``ts``, microseconds) and its id; of two
  facts with the same key the one with the higher ``(ts, event_id)`` wins (for the few keys in
  `EARLIEST_KEYS`, the lower one). Merging is commutative, associative and idempotent;
- a per-event contribution (rows promoted to the gold set, one runtime error) has the event id in
  its key, so summing or counting them never counts an event twice.

"A later success clears an earlier failure" then compares the stamps of two facts: event time,
never arrival order. The same rule runs in Python (`merge`) and in Lua (`services.coach.io`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import msgspec
import orjson

Stamp = tuple[int, str]
State = Mapping[str, "Fact"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Keys where the earliest fact wins (they record *that* something happened, once).
EARLIEST_KEYS: Final[frozenset[str]] = frozenset({"project:active", "data:rows_landed"})
#: `payload.status` values that make an info event of a stage a success.
SUCCESS_STATUSES: Final[frozenset[str]] = frozenset({"completed", "succeeded", "success"})
#: Longest text kept from a payload in a fact (titles and bodies stay short).
TEXT_MAX: Final = 120


class Fact(msgspec.Struct, frozen=True, gc=False):
    """One keyed piece of project state, stamped with the event that produced it.

    A frozen struct, not a frozen dataclass: a batch builds thousands of them, and a struct is
    built in C (a frozen dataclass sets each field through ``object.__setattr__``).
    """

    key: str
    """What the fact is about, e.g. ``training:oom`` or ``gold_set:rows:<event_id>``."""
    ts: int
    """Event time in microseconds since the epoch (the producer's clock)."""
    event_id: str
    """Id of the event that produced it; breaks ties between equal times."""
    value: dict[str, Any] = msgspec.field(default_factory=dict)
    """A small JSON object: what the generator needs to word its suggestion."""

    @property
    def stamp(self) -> Stamp:
        """The order of facts: event time, then event id."""
        return (self.ts, self.event_id)


def micros(ts: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def supersedes(new: Fact, old: Fact | None) -> bool:
    """Whether `new` replaces `old` under the same key."""
    if old is None:
        return True
    if new.key in EARLIEST_KEYS:
        return new.stamp < old.stamp
    return new.stamp > old.stamp


def merge(state: dict[str, Fact], facts: Iterable[Fact]) -> set[str]:
    """Merge facts into `state` in place; returns the keys that changed."""
    changed: set[str] = set()
    for fact in facts:
        key = fact.key
        old = state.get(key)
        if old is None or supersedes(fact, old):
            state[key] = fact
            changed.add(key)
    return changed


def encode(fact: Fact) -> bytes:
    """The stored form of a fact: compact JSON ``[ts, event_id, value]``."""
    return orjson.dumps([fact.ts, fact.event_id, fact.value])


def decode(key: str, raw: bytes | str) -> Fact:
    """A fact from its stored form."""
    ts, event_id, value = orjson.loads(raw)
    return Fact(key, int(ts), str(event_id), value)


# --- what rules read from an event ----------------------------------------------------------


class RunLike(Protocol):
    """What the rules read from a BrewSLM event: a `shared.models.RunEvent`, or the valid
    stream's struct of one (`shared.valid_stream`), which has the same fields."""

    @property
    def run_id(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def reason_code(self) -> str | None: ...
    @property
    def summary(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def ts(self) -> datetime: ...


class Seen(msgspec.Struct, frozen=True, gc=False):
    """An accepted BrewSLM event, as the rules read it (read by every rule: built once)."""

    event: RunLike
    """The event."""
    event_id: str
    """Its id."""
    ts: int
    """Its time in microseconds since the epoch."""
    code: str | None
    """Its reason code."""
    payload: dict[str, Any]
    """Its payload."""
    success: bool
    """An info event reporting a finished step: ``payload.status`` in SUCCESS_STATUSES."""

    @classmethod
    def of(cls, event: RunLike, event_id: str) -> Seen:
        """Wrap an event with its id."""
        payload = event.payload
        status = payload.get("status")
        success = (
            event.severity == "info"
            and isinstance(status, str)
            and (status.lower() in SUCCESS_STATUSES)
        )
        return cls(event, event_id, micros(event.ts), event.reason_code, payload, success)

    def fact(self, key: str, value: dict[str, Any] | None = None) -> Fact:
        """A fact stamped with this event."""
        return Fact(key, self.ts, self.event_id, value or {})

    def ref(self, **extra: Any) -> dict[str, Any]:
        """A fact value naming the run (and its summary), plus `extra` without None values."""
        value: dict[str, Any] = {"run_id": self.event.run_id}
        if self.event.summary:
            value["summary"] = self.event.summary[:TEXT_MAX]
        value.update({k: v for k, v in extra.items() if v is not None})
        return value


def int_field(payload: Mapping[str, Any], *names: str) -> int | None:
    """The first of `names` holding a JSON integer (booleans are not integers)."""
    for name in names:
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def text_field(payload: Mapping[str, Any], *names: str) -> str | None:
    """The first of `names` holding a string or an integer, as short text."""
    for name in names:
        value = payload.get(name)
        if isinstance(value, str) and value:
            return value[:TEXT_MAX]
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


# --- what generators read from a state ------------------------------------------------------


def newer(fact: Fact | None, than: Fact | None) -> bool:
    """`fact` exists and is later than `than` (or `than` does not exist)."""
    return fact is not None and (than is None or fact.stamp > than.stamp)


def prefixed(state: State, prefix: str) -> Iterator[Fact]:
    """Facts whose key starts with `prefix`."""
    return (fact for key, fact in state.items() if key.startswith(prefix))


def after(state: State, prefix: str, cutoff: Fact | None) -> list[Fact]:
    """Facts under `prefix` later than `cutoff`, oldest first."""
    found = [f for f in prefixed(state, prefix) if newer(f, cutoff)]
    return sorted(found, key=lambda f: f.stamp)
