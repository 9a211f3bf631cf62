"""Micro-benchmark of the validator's work per batch, A/B between two source trees.

One batch is what a validator process does with 1000 entries of the benchmark's workload
(`bench.events`, every kind of event): parse the XREADGROUP reply as the worker does (hiredis
reader, redis-py's reply callback or the consumer's own parsing, `Entry` building), judge every
entry, build the atomic move and pack its command in C — all but the socket I/O. The figure is
process CPU time per event, taken in a child process per tree; ``ab`` alternates the two trees
round after round (the machine is shared: interleaved, medians).

    .venv/bin/python -m bench.validator_batch ab --old /tmp/validator-old --new . --rounds 9
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

BATCH = 1000


def _reply(bodies: list[bytes], stream: bytes) -> bytes:
    """The bytes Redis sends for ``XREADGROUP ... STREAMS <stream> >`` of `bodies`.

    RESP3 (a map of streams): the protocol the stages' clients negotiate.
    """

    def bulk(data: bytes) -> bytes:
        return b"$%d\r\n%s\r\n" % (len(data), data)

    rows = [
        b"*2\r\n" + bulk(b"1764600000000-%d" % i) + b"*2\r\n" + bulk(b"__data__") + bulk(body)
        for i, body in enumerate(bodies)
    ]
    return b"%1\r\n" + bulk(stream) + b"*%d\r\n" % len(rows) + b"".join(rows)


def _reader(client: Any) -> Callable[[Any], list[Any]]:
    """The tree's way from a parsed reply to entries (its own, or redis-py's callback)."""
    from shared import consumer

    own = getattr(consumer, "entries_of_reply", None)
    if own is not None:
        return lambda raw: own(raw, 1)  # type: ignore[no-any-return]
    callback = client.response_callbacks["XREADGROUP"]
    entry, as_text = consumer.Entry, consumer.as_text
    rows_of = consumer._entries_of
    return lambda raw: [entry(as_text(i), f, 1) for i, f in rows_of(callback(raw)) if f]


def _context(settings: Any, client: Any) -> Any:
    from shared import metrics
    from shared.connections import async_redis
    from shared.consumer import BatchContext

    sha = "0" * 40
    # The tree's own connection class (not connected): it packs as the stages' clients do.
    pool = async_redis(settings).connection_pool
    connection = pool.connection_class(**pool.connection_kwargs)

    async def mover(keys: list[str], args: list[Any]) -> int:
        # What redis-py's Script call sends: EVALSHA, packed by the tree's client.
        packed = connection.pack_command("EVALSHA", sha, len(keys), *keys, *args)
        return sum(map(len, packed))

    partition = settings.names.partition(0)
    ctx = BatchContext(
        client, settings, partition.events, "validator", "bench-1", "validator", mover,
        partition=partition,
    )  # fmt: skip
    ctx.counts = metrics.BatchCounts()
    return ctx


def _drive(coro: Any) -> None:
    """Run a coroutine that never suspends (the fake mover does no I/O)."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise RuntimeError("the batch suspended")


def worker(batches: int) -> dict[str, float]:
    """CPU µs per event of reading and handling `batches` batches in this tree."""
    import hiredis
    import redis.asyncio as aredis

    from bench.events import body, now_iso
    from services.validator.io import validate_batch
    from shared.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    client = aredis.Redis()
    ctx = _context(settings, client)
    ts = now_iso()
    reply = _reply([body(seq, "bench-", ts) for seq in range(BATCH)], ctx.stream.encode())
    read = _reader(client)
    asyncio.set_event_loop(asyncio.new_event_loop())
    gc.freeze()  # as the stages do once started
    totals = {"read": 0.0, "handle": 0.0}
    for n in range(batches + 2):  # two warm-up batches
        started = time.process_time()
        parser = hiredis.Reader()
        parser.feed(reply)
        entries = read(parser.gets())
        middle = time.process_time()
        _drive(validate_batch(entries, ctx))
        ended = time.process_time()
        assert len(entries) == BATCH
        if n >= 2:
            totals["read"] += middle - started
            totals["handle"] += ended - middle
    per = {k: v * 1e6 / max(1, batches * BATCH) for k, v in totals.items()}
    per["total"] = per["read"] + per["handle"]
    return per


def _run(tree: str, batches: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        # This file, run in the other tree: its imports (shared, services, bench.events) are
        # that tree's.
        [sys.executable, os.path.abspath(__file__), "worker", "--batches", str(batches)],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def ab(old: str, new: str, rounds: int, batches: int) -> dict[str, dict[str, float]]:
    """Median CPU µs per event of each tree, the trees alternating round after round."""
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for n in range(rounds):
        order = [("old", old), ("new", new)] if n % 2 == 0 else [("new", new), ("old", old)]
        for name, tree in order:
            runs[name].append(_run(tree, batches))
    return {
        name: {key: round(statistics.median(r[key] for r in rs), 2) for key in rs[0]}
        for name, rs in runs.items()
    }


def _instructions(tree: str, batches: int) -> int:
    """Instructions callgrind counts in a worker run of `batches` batches (start-up included)."""
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         os.path.abspath(__file__), "worker", "--batches", str(batches)],
        cwd=tree, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(re.findall(r"Collected : (\d+)", out.stderr)[-1])


def instructions(tree: str, batches: int) -> float:
    """Instructions per event of a tree: a run of `batches` batches less a run of none."""
    _run(tree, 0)  # compiles the tree's modules first: neither counted run compiles any
    return (_instructions(tree, batches) - _instructions(tree, 0)) / (batches * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("worker")
    one.add_argument("--batches", type=int, default=20)
    both = sub.add_parser("ab")
    both.add_argument("--old", required=True)
    both.add_argument("--new", default=".")
    both.add_argument("--rounds", type=int, default=9)
    both.add_argument("--batches", type=int, default=20)
    counted = sub.add_parser("instructions", help="callgrind: instructions per event of a tree")
    counted.add_argument("--tree", default=".")
    counted.add_argument("--batches", type=int, default=5)
    args = parser.parse_args()
    if args.mode == "worker":
        # Run as a file, this directory leads sys.path: its modules (bench/services.py) would
        # shadow the tree's packages.
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        print(json.dumps(worker(args.batches)))
    elif args.mode == "instructions":
        print(round(instructions(os.path.abspath(args.tree), args.batches)))
    else:
        old, new = os.path.abspath(args.old), os.path.abspath(args.new)
        print(json.dumps(ab(old, new, args.rounds, args.batches), indent=1))


if __name__ == "__main__":
    main()
