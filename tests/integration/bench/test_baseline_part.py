"""The benchmark's lean baseline part, end to end on a tiny workload, so it cannot rot.

Real Redis, SQLite and PostgreSQL (its own schema): both stage processes, the producer, the
measured window and the drain, exactly as `make bench` runs them, only shorter. Also the
validate stage's dead-letter path, which the sustained figure (all valid events) never takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bench import baseline
from bench.baseline_stage import join, read, validate_batch
from bench.env import Workspace
from bench.events import body, now_iso
from bench.plan import Plan
from shared.names import VALIDATOR_GROUP, Names
from shared.wire import DATA_FIELD

pytestmark = pytest.mark.integration

TINY = dataclasses.replace(Plan.small(), warmup_s=0.5, sustained_s=1.5)


@pytest.fixture(scope="module")
def result() -> Iterator[Any]:
    ws = Workspace()
    try:
        yield baseline.run(ws, TINY)
    finally:
        ws.clean()


@pytest.mark.parametrize("backend", baseline.BACKENDS)
def test_the_baseline_stores_every_event_and_is_measured(result: Any, backend: str) -> None:
    out = result[backend]
    sustained = out["sustained"]
    assert out["exit_codes"] == {"validate": 0, "persist": 0}  # SIGTERM: a clean stop
    assert sustained["eps"] > 0 and sustained["drained"] and sustained["lost"] == 0, sustained
    assert set(sustained["cpu_us_per_event"]) == {"validate", "persist", "producer", "redis"}
    assert sustained["cpu_us_per_event"]["validate"] > 0


def test_invalid_events_go_to_the_dead_stream_and_the_batch_is_acked(
    sync_client: redis.Redis, namespace: str
) -> None:
    # Given one valid and one invalid entry on the incoming stream
    names = Names(namespace)
    join(sync_client, names.events, VALIDATOR_GROUP)
    good, bad = body(1, "e-", now_iso()), b'{"dialect":"brewslm"}'
    for data in (good, bad):
        sync_client.xadd(names.events, {DATA_FIELD: data})
    # When the validate stage handles the batch
    validate_batch(sync_client, names, read(sync_client, names.events, VALIDATOR_GROUP))
    # Then each went to its stream, and nothing is left pending
    valid: Any = sync_client.xrange(names.valid)
    dead: Any = sync_client.xrange(names.dead)
    assert [f[DATA_FIELD] for _, f in valid] == [good]
    assert [f[DATA_FIELD] for _, f in dead] == [bad]
    assert sync_client.xpending(names.events, VALIDATOR_GROUP)["pending"] == 0
