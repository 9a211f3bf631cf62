"""Stories: the errors of a cluster reconfiguring are an outage to wait out, not a failed batch.

A cluster client raises CLUSTERDOWN, TRYAGAIN, MOVED/ASK, "slot not covered" or a redirect
TTL exhausted once its own retries ran out mid-failover or mid-resharding; a blocked read whose
stream ``MIGRATE`` just took away fails with UNBLOCKED. A worker treats them
as Redis being unavailable: one warning when the outage starts, one line when it ends, the
Redis backoff, its group checked again; its entries are then handled as usual.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from structlog.testing import capture_logs

from shared.consumer import BatchContext, Entry, StreamWorker
from shared.settings import Settings
from tests.workers import run_until

pytestmark = pytest.mark.integration

CLUSTER_ERRORS = [
    ClusterDownError("CLUSTERDOWN The cluster is down"),
    TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
    MovedError("3999 127.0.0.1:6381"),
    AskError("3999 127.0.0.1:6381"),
    SlotNotCoveredError('Slot "3999" not covered by the cluster.'),
    ClusterError("TTL exhausted."),
    ResponseError("UNBLOCKED the stream key no longer exists"),
]


@pytest.mark.parametrize("error", CLUSTER_ERRORS, ids=lambda e: type(e).__name__)
async def test_a_cluster_error_is_waited_out_as_an_outage(
    async_client: aredis.Redis,
    sync_client: redis.Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    # given three entries, and a read that fails with a cluster's error
    stream, group = settings.names.events, "g"
    for i in range(3):
        sync_client.xadd(stream, {b"n": str(i).encode()})
    read, failures = async_client.xreadgroup, [error]

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await read(*args, **kwargs)

    monkeypatch.setattr(async_client, "xreadgroup", flaky)
    handled: list[str] = []

    async def handler(batch: list[Entry], ctx: BatchContext) -> None:
        handled.extend(e.id for e in batch)
        await ctx.ack([e.id for e in batch])

    worker = StreamWorker(async_client, settings, stream=stream, group=group, stage="c",
                          handler=handler, middleware=[])  # fmt: skip
    # when the worker runs until they are handled
    with capture_logs() as logs:
        await run_until(worker, lambda: len(handled) == 3)
    # then the error was an outage (a warning, then its end), not a failed batch
    events = [
        (e["event"], e["log_level"]) for e in logs if e["event"].startswith(("redis", "batch"))
    ]
    assert events == [("redis_unavailable", "warning"), ("redis_recovered", "info")]
    assert sync_client.xpending(stream, group)["pending"] == 0
