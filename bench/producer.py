"""The load generator, a process of its own: ``python -m bench.producer --namespace NS ...``.

Two modes, both pipelined XADD of `bench.events` bodies to the incoming stream of each event's
partition (by its run id, as every runbus producer routes; ``--partitions``, one by default),
through a cluster client with ``--cluster``:

- flat out (``--rate 0``): batches of 1000 as fast as the pipeline absorbs them, i.e. keeping
  at most ``--max-inflight`` events published but not yet finished (stored by the persister and
  acknowledged by the coach, or dead-lettered), so the figure is the pipeline's, not a backlog's;
- paced (``--rate R``): R events/s, sent every millisecond or so, each stamped with its publish
  time; every ``--probe-every``-th event is a latency probe.

Prints one JSON line at the end: events published, seconds, rate.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

import redis
from redis.cluster import RedisCluster
from redis.exceptions import ResponseError

from bench.events import body, now_iso, run_of
from shared.names import Names, StreamKind
from shared.pipeline import PIPELINE
from shared.wire import DATA_FIELD

BATCH = 1000


@dataclass
class Options:
    """What to publish, where, and how fast."""

    redis_url: str
    namespace: str
    partitions: int
    cluster: bool
    seconds: float
    rate: float
    max_inflight: int
    invalid_every: int
    probe_every: int
    prefix: str
    readers: str = ""
    """Groups of the valid stream whose acks finish an event (comma-separated; empty: every
    `PIPELINE` reader)."""


_stopped = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    global _stopped
    _stopped = True


def readers_of(spec: str) -> tuple[str, ...]:
    """The valid stream's groups named by ``--readers``; every `PIPELINE` reader when empty."""
    named = tuple(name.strip() for name in spec.split(",") if name.strip())
    return named or tuple(stage.group for stage in PIPELINE.readers(StreamKind.VALID))


def _acked(client: redis.Redis, stream: str, readers: tuple[str, ...]) -> int:
    """Entries of one valid stream acked by every one of `readers`."""
    try:
        groups = client.xinfo_groups(stream)
    except ResponseError:
        groups = []
    acked = {g["name"].decode(): int(g["entries-read"] or 0) - int(g["pending"]) for g in groups}
    return min(acked.get(group, 0) for group in readers)


def finished(client: redis.Redis, names: Names, readers: tuple[str, ...] = ()) -> int:
    """Events the pipeline finished: acked by every reader of the valid stream (`readers`, or
    every `PIPELINE` reader), or dead-lettered."""
    groups = readers or readers_of("")
    stored = sum(_acked(client, stream, groups) for stream in names.streams(StreamKind.VALID))
    return stored + sum(int(client.xlen(stream)) for stream in names.streams(StreamKind.DEAD))


def publish(client: redis.Redis, opts: Options, first: int, count: int) -> None:
    """Pipelined XADD of events `first`.. `first + count - 1`, each to its run's partition."""
    names = Names(opts.namespace, opts.partitions)
    pipe = client.pipeline(transaction=False)
    for seq in range(first, first + count):
        invalid = opts.invalid_every > 0 and seq % opts.invalid_every == 0
        probe = opts.probe_every > 0 and seq % opts.probe_every == 0
        # Each event its own time, as real ones have: nothing downstream may cache on it.
        data = body(seq, opts.prefix, now_iso(), invalid=invalid, probe=probe)
        stream = names.partition_for(run_of(seq, opts.prefix, probe=probe)).events
        pipe.xadd(stream, {DATA_FIELD: data})
    pipe.execute()


def flat_out(client: redis.Redis, opts: Options) -> int:
    """Publish in batches, never more than `max_inflight` ahead of the pipeline."""
    names, readers = Names(opts.namespace, opts.partitions), readers_of(opts.readers)
    end = time.monotonic() + opts.seconds
    before = finished(client, names, readers)  # earlier phases' events, already through
    sent = 0
    while not _stopped and time.monotonic() < end:
        publish(client, opts, sent, BATCH)
        sent += BATCH
        while not _stopped and time.monotonic() < end:
            if sent - (finished(client, names, readers) - before) <= opts.max_inflight:
                break
            time.sleep(0.002)
    return sent


def paced(client: redis.Redis, opts: Options) -> int:
    """Publish `rate` events/s, in small pipelines about every millisecond."""
    start = time.monotonic()
    sent = 0
    while not _stopped:
        elapsed = time.monotonic() - start
        if elapsed >= opts.seconds:
            break
        due = min(BATCH, int(elapsed * opts.rate) + 1 - sent)
        if due <= 0:
            time.sleep(0.0005)
            continue
        publish(client, opts, sent, due)
        sent += due
    return sent


def connect(url: str, cluster: bool) -> redis.Redis:
    """A blocking client of one node, or of a cluster (typed as one node's, as runbus does)."""
    if cluster:
        return RedisCluster.from_url(url)  # type: ignore[return-value]
    return redis.Redis.from_url(url)


def _options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.producer", description=__doc__)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--cluster", action="store_true", help="a Redis Cluster client")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: flat out")
    parser.add_argument("--max-inflight", type=int, default=20 * BATCH)
    parser.add_argument("--invalid-every", type=int, default=0, help="every n-th is invalid")
    parser.add_argument("--probe-every", type=int, default=0, help="every n-th is a probe")
    parser.add_argument("--prefix", default="e-", help="event id prefix")
    parser.add_argument(
        "--readers", default="", help="valid-stream groups that finish an event (default: all)"
    )
    return Options(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the producer; prints its result as JSON."""
    signal.signal(signal.SIGTERM, _on_term)
    opts = _options(argv)
    client = connect(opts.redis_url, opts.cluster)
    began = time.monotonic()
    try:
        sent = paced(client, opts) if opts.rate > 0 else flat_out(client, opts)
    finally:
        client.close()
    seconds = time.monotonic() - began
    print(json.dumps({"published": sent, "seconds": seconds, "eps": sent / seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
