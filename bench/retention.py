"""Issue #17's figures: the dead-letter path with retention on and off (same run), the archive's
write cost per entry, and Redis's memory per million backlog entries.

``python -m bench.retention [--entries N] [--postgres URL]``: a private redis-server (no
``maxmemory``), the three stages as processes (`bench.services.ServiceGroup`), a SQLite
history in a temporary directory. Prints one JSON document; nothing is written to
``bench/results``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.private_redis import PrivateRedis
from bench.services import ServiceGroup
from services.history import store_for_url
from shared.archive import archive_row
from shared.models import DeadLetter
from shared.names import Names
from shared.wire import dead_letter_fields, entry_time, event_body

#: A typical BrewSLM event (229 bytes), and the same with an unknown reason code.
EVENT: dict[str, Any] = {
    "project_id": 7, "run_id": "exp-42", "stage": "training", "severity": "error",
    "reason_code": "training_oom", "summary": "loss went NaN at step 1200",
    "ts": "2026-11-23T02:50:00Z", "event_id": "0123456789abcdef0123456789abcdef",
}  # fmt: skip


def bad_body(i: int) -> bytes:
    return event_body(EVENT | {"reason_code": "no_such_code", "event_id": f"bad-{i}"})


def dead_letter_path(server: PrivateRedis, work: Path, entries: int, retention: bool) -> float:
    """Events/s of invalid events from XADD until every one is a dead letter (retention on:
    the stream kept at 10,000, the rest archived and trimmed meanwhile)."""
    namespace = f"b{uuid.uuid4().hex[:8]}"
    names = Names(namespace)
    db = work / f"{namespace}.db"
    services = ServiceGroup(namespace, f"sqlite:///{db}", work / "logs", redis_url=server.url)
    services.env.update(
        RUNBUS_DEAD_LETTER_RETENTION=str(retention).lower(),
        RUNBUS_DEAD_LETTER_MAX_ENTRIES="10000",
        RUNBUS_DEAD_LETTER_SWEEP_INTERVAL_S="1",
    )
    client = redis.Redis.from_url(server.url)
    with services:
        services.start()
        began = time.monotonic()
        for start in range(0, entries, 1000):
            with client.pipeline(transaction=False) as pipe:
                for i in range(start, min(entries, start + 1000)):
                    pipe.xadd(names.events, {"__data__": bad_body(i)})
                pipe.execute()
        while True:
            done = int(client.xinfo_stream(names.dead)["entries-added"])
            if done >= entries:
                break
            time.sleep(0.05)
        rate = entries / (time.monotonic() - began)
        if retention:  # the archive catches up with the stream: what the sweep left behind
            while int(client.xlen(names.dead)) > 10000:
                time.sleep(0.2)
    client.close()
    return round(rate)


def rows_of(n: int, stream: str) -> list[Any]:
    letter = DeadLetter(
        errors=["invalid_reason_code:no_such_code"], message="reason_code 'no_such_code' ...",
        original=bad_body(0), original_fields={}, source_stream="{b}:events",
        source_id="1700000000000-0", group="validator", consumer="validator-vm-0",
        stage="validator", delivery_count=1, first_seen=entry_time("1700000000000-0"),
        dead_at=entry_time("1700000000000-0"), taxonomy_version="tx-0", service_version="0",
        hint={},
    )  # fmt: skip
    fields = dead_letter_fields(letter)
    return [archive_row(stream, f"1700000000000-{i}", fields) for i in range(n)]


async def archive_cost(url: str, entries: int) -> float:
    """Microseconds per archived dead letter, written in the sweep's chunks of 1000."""
    store = store_for_url(url)
    await store.open()
    await store.migrate()
    try:
        chunks = [rows_of(1000, f"{{b{i}}}:dead") for i in range(entries // 1000)]
        began = time.perf_counter()
        for chunk in chunks:
            await store.archive_dead_letters(chunk)
        return round((time.perf_counter() - began) / entries * 1e6, 1)
    finally:
        await store.close()
        if url.startswith("postgresql://"):
            await _drop_schema(url)


async def _drop_schema(url: str) -> None:
    import asyncpg

    base, _, schema = url.partition("?search_path=")
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def memory_per_million(server: PrivateRedis, count: int = 100_000) -> dict[str, int]:
    """MiB of Redis memory per million entries of each stream's typical entry."""
    client = redis.Redis.from_url(server.url)
    event = event_body(EVENT)
    envelope = orjson.dumps({
        "event_id": EVENT["event_id"], "dialect": "brewslm", "taxonomy_version": "tx-0e70105f481e",
        "accepted_at": "2026-11-23T02:16:30.650016+00:00", "source_id": "1795400190611-1",
        "event": EVENT,
    })  # fmt: skip
    dead = dead_letter_fields(rows_letter(event))
    out: dict[str, int] = {}
    for name, fields in (("events", {b"__data__": event}), ("valid", {b"__data__": envelope}),
                         ("dead", dead)):  # fmt: skip
        before = int(client.info("memory")["used_memory"])
        for _start in range(0, count, 1000):
            with client.pipeline(transaction=False) as pipe:
                for _ in range(1000):
                    pipe.xadd(f"mem:{name}", fields)  # type: ignore[arg-type]
                pipe.execute()
        used = int(client.info("memory")["used_memory"]) - before
        out[name] = round(used / count * 1_000_000 / 2**20)
        client.delete(f"mem:{name}")
    client.close()
    return out


def rows_letter(original: bytes) -> DeadLetter:
    moment = entry_time("1700000000000-0")
    return DeadLetter(
        errors=["invalid_reason_code:train_gpu_on_fire"], message="not in taxonomy",
        original=original, original_fields={}, source_stream="{b}:events",
        source_id="1700000000000-0", group="validator", consumer="validator-vm-0",
        stage="validator", delivery_count=1, first_seen=moment, dead_at=moment,
        taxonomy_version="tx-0e70105f481e", service_version="0.1.0",
        hint={"stage": "training", "severity": "error", "project_id": "7", "run_id": "exp-42"},
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run every measurement; print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, PrivateRedis(Path(tmp) / "redis") as server:
        work = Path(tmp)
        figures: dict[str, Any] = {"entries": args.entries}
        # on and off alternate, twice each: the machine's load drifts during a run
        for label in ("on", "off", "on", "off"):
            rate = dead_letter_path(server, work, args.entries, label == "on")
            figures.setdefault(f"dead_letter_path_retention_{label}_events_per_s", []).append(rate)
            server.flush()
        figures["archive_us_per_entry_sqlite"] = asyncio.run(
            archive_cost(f"sqlite:///{work / 'archive.db'}", 20_000)
        )
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        figures["archive_us_per_entry_postgres"] = asyncio.run(
            archive_cost(f"{args.postgres}?search_path={schema}", 20_000)
        )
        figures["redis_mib_per_million_entries"] = memory_per_million(server)
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
