"""The steady load of the fault tests: a deterministic event mix and a fixed-rate producer.

Every event carries a unique ``event_id`` that the conservation checker follows through the
system; even the invalid ones carry it in their bytes (``"event_id":"..."``), so a dead letter's
``original`` names the event it came from. The mix is mostly valid BrewSLM events of the coached
stages (so the coach cache has something to get right), some Pulse events, and about one in ten
invalid entries (an unknown reason code, a wrong stage, or truncated JSON).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson
import redis

from shared.producer import BestEffortProducer

Kind = Literal["valid", "invalid"]
EVENT_ID = re.compile(rb'"event_id":"([^"]+)"')


@dataclass(frozen=True, slots=True)
class Offer:
    """One event of the mix: its id, its bytes (or document) and whether it should pass."""

    event_id: str
    kind: Kind
    doc: dict[str, Any] | None
    body: bytes


def _brewslm(stage: str, severity: str, code: str | None, payload: dict[str, Any]) -> Any:
    return {"stage": stage, "severity": severity, "reason_code": code, "payload": payload}


# Valid shapes, cycled: failures and successes of every coached stage, so suggestions appear,
# disappear ("a later success clears an earlier failure") and accumulate (gold-set rows).
_VALID: tuple[Callable[[int], dict[str, Any]], ...] = (
    lambda n: _brewslm("training", "error", "training_oom", {"batch_size": 8 + n % 24}),
    lambda n: _brewslm("training", "info", None, {"status": "completed"}),
    lambda n: _brewslm("training", "error", "training_runtime_error", {}),
    lambda n: _brewslm("training", "error", "training_timeout", {"budget_s": 600}),
    lambda n: _brewslm(
        "ingestion", "info", "annotation_rows_promoted", {"target": "gold_set", "rows": n % 40}
    ),
    lambda n: _brewslm("ingestion", "info", "dataset_import_run", {"accepted": 100 + n % 7}),
    lambda n: _brewslm("ingestion", "error", "dataset_import_failed", {}),
    lambda n: _brewslm("cleaning", "error", "cleaning_pii_block", {"findings": n % 9}),
    lambda n: _brewslm("cleaning", "info", None, {"status": "succeeded", "review_queue": n % 5}),
    lambda n: _brewslm("eval", "error", "eval_judge_unavailable", {"provider": "judge"}),
    lambda n: _brewslm(
        "eval", "info", None, {"status": "completed", "failure_clusters": [{"id": f"c{n % 3}"}]}
    ),
    lambda n: _brewslm("adapter", "error", "adapter_schema_mismatch", {"field": "text"}),
    lambda n: _brewslm("export", "info", None, {}),
)


@dataclass
class EventMix:
    """Deterministic events: ``<tag>-<seq>``, one in `invalid_every` invalid."""

    tag: str
    projects: int = 4
    invalid_every: int = 10
    broken_json: bool = True
    base_ts: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=1))

    def offer(self, seq: int) -> Offer:
        """The event number `seq` of the mix."""
        event_id = f"{self.tag}-{seq:07d}"
        ts = (self.base_ts + timedelta(milliseconds=seq)).isoformat()
        project = 1 + seq % self.projects
        if seq % self.invalid_every == self.invalid_every - 1:
            return self._invalid(seq, event_id, ts, project)
        if seq % 7 == 3:
            doc: dict[str, Any] = {
                "dialect": "pulse", "event_id": event_id, "run_id": f"run-{seq % 50}",
                "project_id": project, "event_type": "run.completed", "severity": "info",
                "message": "done", "created_at": ts,
            }  # fmt: skip
        else:
            doc = {"event_id": event_id, "project_id": project, "run_id": f"r-{seq % 50}", "ts": ts}
            doc |= _VALID[seq % len(_VALID)](seq)
        return Offer(event_id, "valid", doc, orjson.dumps(doc))

    def _invalid(self, seq: int, event_id: str, ts: str, project: int) -> Offer:
        base = {"event_id": event_id, "project_id": project, "run_id": f"r-{seq % 50}", "ts": ts}
        shape = (seq // self.invalid_every) % (3 if self.broken_json else 2)
        if shape == 2:  # truncated JSON: only its bytes name the event
            body = orjson.dumps(base)[:-1] + b',"stage":'
            return Offer(event_id, "invalid", None, body)
        if shape == 1:
            doc = base | {"stage": "no_such_stage", "severity": "info"}
        else:
            doc = base | {"stage": "training", "severity": "error", "reason_code": "no_such_code"}
        return Offer(event_id, "invalid", doc, orjson.dumps(doc))

    def __iter__(self) -> Iterator[Offer]:
        seq = 0
        while True:
            yield self.offer(seq)
            seq += 1


def event_id_of(body: bytes) -> str | None:
    """The first ``"event_id"`` named in some bytes (an event, an envelope, a broken body)."""
    found = EVENT_ID.search(body)
    return found.group(1).decode() if found else None


#: Sends a batch of offers; returns those it took (it may raise: then none was taken).
Publish = Callable[[list[Offer]], list[Offer]]


class SteadyProducer:
    """Publishes the mix at a fixed rate from a thread until `stop()`; records what it offered.

    An offer counts as offered once `publish` returned without raising (for the raw publisher:
    Redis acknowledged the XADD; for the best-effort one: the producer took it). Extra offers can
    be slipped in (`inject`): they go out with the next tick.
    """

    def __init__(self, mix: EventMix, publish: Publish, rate: float = 500.0, tick: float = 0.02):
        self.mix = mix
        self.publish = publish
        self.per_tick = max(1, round(rate * tick))
        self.tick = tick
        self.offered: dict[str, Offer] = {}
        self.failures: list[str] = []
        self._extra: list[Offer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-producer", daemon=True)
        self.started = 0.0
        self.stopped = 0.0

    def start(self) -> SteadyProducer:
        """Start publishing."""
        self.started = time.monotonic()
        self._thread.start()
        return self

    def inject(self, offer: Offer) -> None:
        """Publish `offer` with the next tick (e.g. a poison event)."""
        with self._lock:
            self._extra.append(offer)

    def stop(self) -> None:
        """Stop publishing (the tick in progress completes)."""
        self._stop.set()
        self._thread.join(30)
        self.stopped = time.monotonic()

    @property
    def rate(self) -> float:
        """Offers per second actually achieved."""
        elapsed = (self.stopped or time.monotonic()) - self.started
        return len(self.offered) / elapsed if elapsed > 0 else 0.0

    def _run(self) -> None:
        events = iter(self.mix)
        deadline = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                batch, self._extra = self._extra, []
            self._send(batch + [next(events) for _ in range(self.per_tick)])
            deadline += self.tick
            self._stop.wait(max(0.0, deadline - time.monotonic()))  # pacing, not synchronisation

    def _send(self, batch: list[Offer]) -> None:
        try:
            taken = self.publish(batch)
        except Exception as exc:  # counted: a raw publisher must never fail in these tests
            self.failures.append(repr(exc))
            return
        self.offered.update((o.event_id, o) for o in taken)
        if len(taken) < len(batch):
            self.failures.append(f"{len(batch) - len(taken)} offers refused")


def raw_publisher(client: redis.Redis, stream: str) -> Publish:
    """XADD each body as ``__data__`` in one pipeline: the wire format any language can write."""

    def publish(batch: list[Offer]) -> list[Offer]:
        with client.pipeline(transaction=False) as pipe:
            for offer in batch:
                pipe.xadd(stream, {b"__data__": offer.body})
            pipe.execute()
        return batch

    return publish


def best_effort_publisher(producer: BestEffortProducer) -> Publish:
    """Hand each document to a `BestEffortProducer` (which never raises nor blocks)."""

    def publish(batch: list[Offer]) -> list[Offer]:
        return [o for o in batch if o.doc is not None and producer.publish(o.doc)]

    return publish


def poison_offer(event_id: str, dialect: Literal["brewslm", "pulse"] = "pulse") -> Offer:
    """A valid event singled out by its id (a Pulse one gives the coach no facts)."""
    ts = datetime.now(UTC).isoformat()
    if dialect == "pulse":
        doc: dict[str, Any] = {
            "dialect": "pulse", "event_id": event_id, "run_id": "run-poison",
            "event_type": "run.completed", "severity": "info", "created_at": ts,
        }  # fmt: skip
    else:
        doc = {"event_id": event_id, "project_id": 1, "run_id": "r-poison", "ts": ts}
        doc |= _brewslm("training", "error", "training_oom", {"batch_size": 64})
    return Offer(event_id, "valid", doc, orjson.dumps(doc))
