"""One stage of the lean baseline pipeline, a process of its own (issue #15's yardstick).

``python -m bench.baseline_stage validate --namespace NS`` or
``python -m bench.baseline_stage persist --namespace NS --database-url URL``: what a user
could write instead of runbus, by hand, with nothing else around it (no coach, no janitor,
no metrics, no retries, no claiming of stale entries):

- validate: XREADGROUP COUNT 1000 from the incoming stream, pydantic ``validate_json`` of each
  body against runbus's own event models (`RunEvent` | `PulseEvent`, by dialect), then one
  MULTI: XADD each valid body to the valid stream and each invalid one to the dead stream,
  XACK of the batch;
- persist: XREADGROUP COUNT 1000 from the valid stream, orjson parse, one ``executemany`` into
  the 7-column table (`bench.baseline_store`), then XACK.

The client is redis-py's blocking one with hiredis: it packs commands in C, the asyncio client
packs them in Python (limit 1 vs its asyncio variant in the report). SIGTERM stops the loop
after the batch in hand. The stages join runbus's own consumer groups of the streams, so the
producer's back-pressure and the benchmark's readers see their progress as runbus's.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Annotated, Any

import redis
from pydantic import Field, TypeAdapter, ValidationError

from bench.baseline_store import Store, open_store, row_of
from shared.models import PulseEvent, RunEvent
from shared.names import PERSISTER_GROUP, VALIDATOR_GROUP, Names
from shared.wire import DATA_FIELD

BATCH = 1000
#: How long one XREADGROUP waits for entries (ms): how soon SIGTERM is noticed when idle.
BLOCK_MS = 100
CONSUMER = "baseline"
EVENT = TypeAdapter(Annotated[RunEvent | PulseEvent, Field(discriminator="dialect")])

Entries = list[tuple[bytes, dict[bytes, bytes]]]

_stopped = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    global _stopped
    _stopped = True


def join(client: redis.Redis, stream: str, group: str) -> None:
    """Create the group at the stream's start (and the stream), unless it exists."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read(client: redis.Redis, stream: str, group: str) -> Entries:
    """Up to `BATCH` new entries for this consumer (empty after `BLOCK_MS` without any)."""
    # RESP2 reply: [[stream, [(id, fields), ...]]] (redis-py's stubs cover RESP3 too).
    reply: Any = client.xreadgroup(group, CONSUMER, {stream: ">"}, count=BATCH, block=BLOCK_MS)
    entries: Entries = reply[0][1] if reply else []
    return entries


def is_valid(body: bytes) -> bool:
    """Whether a body is a valid event by runbus's models."""
    try:
        EVENT.validate_json(body)
    except ValidationError:
        return False
    return True


def validate_batch(client: redis.Redis, names: Names, entries: Entries) -> None:
    """Forward every entry to the valid or the dead stream and ack the batch, in one MULTI."""
    pipe = client.pipeline(transaction=True)
    for _, fields in entries:
        body = fields.get(DATA_FIELD, b"")
        pipe.xadd(names.valid if is_valid(body) else names.dead, {DATA_FIELD: body})
    pipe.xack(names.events, VALIDATOR_GROUP, *(entry_id for entry_id, _ in entries))
    pipe.execute()


def persist_batch(client: redis.Redis, names: Names, store: Store, entries: Entries) -> None:
    """Store the batch, then ack it (a crash in between redelivers: the key skips repeats)."""
    store.write([row_of(fields[DATA_FIELD]) for _, fields in entries])
    client.xack(names.valid, PERSISTER_GROUP, *(entry_id for entry_id, _ in entries))


def validate(client: redis.Redis, names: Names) -> None:
    """The validate stage's loop, until SIGTERM."""
    join(client, names.events, VALIDATOR_GROUP)
    while not _stopped:
        entries = read(client, names.events, VALIDATOR_GROUP)
        if entries:
            validate_batch(client, names, entries)


def persist(client: redis.Redis, names: Names, database_url: str) -> None:
    """The persist stage's loop, until SIGTERM (the table exists before the group does)."""
    store = open_store(database_url)
    try:
        join(client, names.valid, PERSISTER_GROUP)
        while not _stopped:
            entries = read(client, names.valid, PERSISTER_GROUP)
            if entries:
                persist_batch(client, names, store, entries)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_stage", description=__doc__)
    parser.add_argument("stage", choices=("validate", "persist"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--database-url", default="", help="persist: sqlite:///... or postgres")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_term)
    client = redis.Redis.from_url(args.redis_url)
    try:
        if args.stage == "validate":
            validate(client, Names(args.namespace))
        else:
            persist(client, Names(args.namespace), args.database_url)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
