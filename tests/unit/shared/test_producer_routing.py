"""The producers write each event to its run's partition (fakeredis: only where XADDs land).

The same rule everywhere (`shared.names.partition_of`): a run's events share one partition,
one partition is today's stream, an event without a run id goes to partition 0, and an
invalid event is still refused before anything is sent.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import fakeredis
import orjson
import pytest

from shared.names import Names, StreamKind, partition_of
from shared.producer import InvalidEvent, Outgoing, Producer, SyncProducer, prepare_outgoing
from shared.taxonomy import SEED_TAXONOMY
from tests.unit.contract.events import brewslm, pulse

RUNS = [f"run-{i}" for i in range(40)] + ["exp-42", "ünïcødé-7", "a" * 256]


def events_of_many_runs() -> list[dict[str, Any]]:
    """Three events of every run, interleaved (run 0, run 1, ..., run 0, run 1, ...)."""
    return [pulse(run_id=run, details={"seq": seq}) for seq in range(3) for run in RUNS]


def landed(client: fakeredis.FakeRedis, names: Names) -> dict[str, list[tuple[str, int]]]:
    """For every run, (stream, seq) of each of its events, in stream order."""
    found: dict[str, list[tuple[str, int]]] = {}
    for stream in names.streams(StreamKind.EVENTS):
        for _, fields in client.xrange(stream):
            doc = orjson.loads(fields[b"__data__"])
            found.setdefault(doc["run_id"], []).append((stream, doc["details"]["seq"]))
    return found


def assert_each_run_on_its_partition_in_order(client: fakeredis.FakeRedis, names: Names) -> None:
    found = landed(client, names)
    assert sorted(found) == sorted(RUNS)
    for run, entries in found.items():
        assert entries == [(names.partition_for(run).events, seq) for seq in range(3)]
    # and the runs really spread: more than one partition holds events
    assert sum(1 for s in names.streams(StreamKind.EVENTS) if client.xlen(s)) > 1


def test_sync_producer_puts_every_run_on_its_own_partition() -> None:
    client, names = fakeredis.FakeRedis(), Names("unit", 4)
    producer = SyncProducer(client, names, SEED_TAXONOMY)
    events = events_of_many_runs()
    for event in events[: len(RUNS)]:
        producer.publish(event)
    producer.publish_many(events[len(RUNS) :])
    assert_each_run_on_its_partition_in_order(client, names)


async def test_async_producer_puts_every_run_on_its_own_partition() -> None:
    server = fakeredis.FakeServer()
    client, names = fakeredis.FakeAsyncRedis(server=server), Names("unit", 4)
    producer = Producer(client, names, SEED_TAXONOMY)
    events = events_of_many_runs()
    for event in events[: len(RUNS)]:
        await producer.publish(event)
    await producer.publish_many(events[len(RUNS) :])
    assert_each_run_on_its_partition_in_order(fakeredis.FakeRedis(server=server), names)


def test_one_partition_is_the_one_stream_of_today() -> None:
    client, names = fakeredis.FakeRedis(), Names("unit")
    SyncProducer(client, names, SEED_TAXONOMY).publish_many(events_of_many_runs())
    assert client.keys("*") == [b"{unit}:events"]
    assert client.xlen("{unit}:events") == 3 * len(RUNS)


@pytest.mark.parametrize("run_id", [None, "", 42, ["exp-42"]])
def test_an_event_without_a_string_run_id_goes_to_partition_0(run_id: object) -> None:
    # unvalidated (taxonomy None): the producer routes whatever it is given
    client, names = fakeredis.FakeRedis(), Names("unit", 4)
    SyncProducer(client, names).publish(pulse(run_id=run_id))
    assert client.keys("*") == [names.partition(0).events.encode()]


def test_an_invalid_event_is_refused_and_nothing_is_sent() -> None:
    client, names = fakeredis.FakeRedis(), Names("unit", 4)
    producer = SyncProducer(client, names, SEED_TAXONOMY)
    with pytest.raises(InvalidEvent) as refused:
        producer.publish(brewslm(stage="gold_set", run_id="run-3"))
    assert refused.value.errors == ["invalid_stage:gold_set"]
    with pytest.raises(InvalidEvent):
        producer.publish_many([pulse(run_id="run-1"), pulse(severity="loud", run_id="run-2")])
    assert client.keys("*") == []


@pytest.mark.parametrize(
    ("body", "run_id"),
    [
        (b'{"run_id": "exp-42", "stage": "gold_set"}', "exp-42"),
        (b'{"run_id": 7}', None),
        (b"[1, 2]", None),
        (b"\xff\xfe not json", None),
        (b"", None),
    ],
)
def test_an_encoded_body_is_routed_by_the_run_id_inside_it(body: bytes, run_id: str | None) -> None:
    # what the spool drain and the demo's raw entries rely on: never raises, else partition 0
    assert Outgoing.of_body(body).run_id == run_id


def test_a_prepared_event_routes_like_its_body() -> None:
    out = prepare_outgoing(pulse(run_id="ünïcødé-7"), SEED_TAXONOMY)
    assert Outgoing.of_body(out.body) == out
    names = Names("unit", 12)
    assert out.stream(names) == names.partition(partition_of("ünïcødé-7", 12)).events


def test_nodes_zlib_crc32_routes_like_python() -> None:
    # the Node one-liner of docs/contract.md hashes the run id with zlib.crc32 (Node >= 20.15)
    node = shutil.which("node")
    if node is None:
        pytest.fail("this test needs Node.js >= 20.15 (apt-get install nodejs)")
    script = "const z=require('zlib');for(const r of JSON.parse(process.argv[1]))"
    script += "console.log(z.crc32(r)%12)"
    done = subprocess.run(
        [node, "-e", script, orjson.dumps(RUNS).decode()], capture_output=True, text=True
    )
    assert "is not a function" not in done.stderr, "this Node has no zlib.crc32 (need >= 20.15)"
    assert [int(line) for line in done.stdout.split()] == [partition_of(r, 12) for r in RUNS]
