"""One stage process reads every partition: one `StreamWorker` per partition, one Redis client.

Why one worker per partition rather than one read of many streams: a partition's streams share
a hash tag, different partitions' do not, and a Redis Cluster refuses a multi-key command whose
keys are in different slots (``CROSSSLOT``), ``XREADGROUP`` over several streams included. So
each partition gets its own worker, with everything that works on one stream (its blocking read,
janitor, trimming, poison isolation, group recovery) on that partition's stream alone. Every
process of a stage reads every partition through the same consumer groups: processes on any
number of hosts share the work through the groups, with no leases or assignment of our own.

The workers share the process's client (one connection pool; a cluster client keeps one pool
per node), its handler and one `Totals`. Each blocking read holds a connection while it waits,
so a stage process holds about one connection per partition, plus short-lived ones for moves,
acknowledgements and the janitors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from shared import metrics
from shared.consumer import BatchHandler, StreamWorker, WorkerMiddleware, default_middleware
from shared.names import StreamKind
from shared.settings import Settings


async def warm_up(client: aredis.Redis) -> None:
    """Learn a cluster's topology before commands run concurrently on a fresh client.

    redis-py 8.1's asyncio cluster client, when many commands start at once on a client that
    has not initialised yet, loses connections under them (``AttributeError ... writelines``,
    "Connection closed by server"). Initialising first avoids that; if the cluster is not
    reachable yet, the workers' own retries take over.
    """
    if isinstance(client, RedisCluster):
        with contextlib.suppress(RedisError, OSError):
            await client.initialize()


class PartitionWorkers(metrics.CountsBatches):
    """The workers of one stage process: one consumer of `group` on each partition's stream.

    They share `totals` (the counts of the whole process) and the middleware list. `run` ends
    when `stop` is set and every worker finished its batch; if one worker fails, the others are
    cancelled (their entries stay pending, and are re-read at the next start) and the error
    is raised, so the process exits and is restarted.
    """

    def __init__(
        self,
        client: aredis.Redis,
        settings: Settings,
        *,
        reads: StreamKind,
        group: str,
        stage: str,
        handler: BatchHandler,
        consumer: str | None = None,
        middleware: Sequence[WorkerMiddleware] | None = None,
    ) -> None:
        self.totals = metrics.Totals()
        hooks = list(middleware) if middleware is not None else default_middleware()
        self.workers = tuple(
            StreamWorker(client, settings, stream=p.stream(reads), group=group, stage=stage,
                         handler=handler, consumer=consumer, middleware=hooks, partition=p,
                         totals=self.totals)
            for p in settings.names.all_partitions
        )  # fmt: skip

    @property
    def consumer(self) -> str:
        """The consumer name, the same in every partition's group."""
        return self.workers[0].consumer

    async def run(self, stop: asyncio.Event) -> None:
        """Run every partition's worker until `stop` is set (or one of them fails)."""
        await warm_up(self.workers[0].client)
        tasks = [asyncio.create_task(worker.run(stop)) for worker in self.workers]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = next((t for t in done if t.exception() is not None), None)
            if failed is not None:
                failed.result()  # raises its error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
