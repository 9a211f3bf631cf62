"""Stories: the async and sync producers publish events to the incoming stream of a real Redis."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aredis

from shared.models import PulseEvent, RunEvent
from shared.producer import InvalidEvent, Producer, SyncProducer
from shared.settings import Settings
from shared.validation import Accepted, validate_bytes
from tests.integration.producer.helpers import entries, entry_ids, seq_of, stream_docs
from tests.unit.contract.events import DROP, brewslm, pulse

pytestmark = pytest.mark.integration

ENTRY_ID = re.compile(r"^\d+-\d+$")


def numbered(n: int) -> list[dict[str, Any]]:
    """n valid events, alternating dialects, each carrying its number in payload/details."""
    return [
        brewslm(payload={"seq": i}, severity="info", reason_code=DROP)
        if i % 2 == 0
        else pulse(details={"seq": i}, event_type="run.completed", severity="info")
        for i in range(n)
    ]


class PipelineSpy:
    """Counts pipelines opened on a client and forbids XADD outside them."""

    def __init__(self, client: Any) -> None:
        self.opened: list[dict[str, Any]] = []
        original = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            self.opened.append(kwargs)
            return original(*args, **kwargs)

        def no_direct_xadd(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("publish_many must not XADD outside its pipeline")

        client.pipeline = pipeline
        client.xadd = no_direct_xadd


async def test_publish_returns_the_entry_id_of_an_entry_holding_the_event(
    settings: Settings, async_client: aredis.Redis, sync_client: redis.Redis
) -> None:
    # given an async producer with client-side validation
    producer = Producer(async_client, settings.names, settings.taxonomy)
    # when it publishes one event without an id
    entry_id = await producer.publish(brewslm())
    # then the incoming stream holds exactly that entry, as one __data__ JSON field
    assert ENTRY_ID.match(entry_id)
    stored = entries(sync_client, settings.names.events)
    assert [i for i, _ in stored] == [entry_id]
    (doc,) = stream_docs(sync_client, settings.names.events)
    # and the body is the normalized event with a generated event id
    assert re.fullmatch(r"[0-9a-f]{32}", doc["event_id"])
    result = validate_bytes(stored[0][1][b"__data__"], settings.taxonomy)
    assert isinstance(result, Accepted)
    assert result.event == RunEvent.model_validate({**brewslm(), "event_id": doc["event_id"]})


async def test_a_given_event_id_is_kept_and_generated_ids_are_unique(
    settings: Settings, async_client: aredis.Redis, sync_client: redis.Redis
) -> None:
    producer = Producer(async_client, settings.names, settings.taxonomy)
    await producer.publish(pulse(event_id="pulse-run-7f3a-1"))
    await producer.publish(pulse())
    await producer.publish(pulse())
    ids = [d["event_id"] for d in stream_docs(sync_client, settings.names.events)]
    assert ids[0] == "pulse-run-7f3a-1"
    assert len(set(ids)) == 3


async def test_publish_accepts_models_of_both_dialects(
    settings: Settings, async_client: aredis.Redis, sync_client: redis.Redis
) -> None:
    producer = Producer(async_client, settings.names, settings.taxonomy)
    run_event = RunEvent.model_validate(brewslm(event_id="a-1"))
    pulse_event = PulseEvent.model_validate(pulse(event_id="b-1"))
    await producer.publish(run_event)
    await producer.publish(pulse_event)
    docs = stream_docs(sync_client, settings.names.events)
    assert RunEvent.model_validate(docs[0]) == run_event
    assert PulseEvent.model_validate(docs[1]) == pulse_event


async def test_publish_many_sends_one_pipeline_and_returns_ids_in_order(
    settings: Settings, async_client: aredis.Redis, sync_client: redis.Redis
) -> None:
    # given a producer whose client records every pipeline
    producer = Producer(async_client, settings.names, settings.taxonomy)
    spy = PipelineSpy(async_client)
    # when it publishes 500 events at once
    ids = await producer.publish_many(numbered(500))
    # then one non-transactional pipeline carried them, and the ids follow the stream order
    assert spy.opened == [{"transaction": False}]
    assert ids == entry_ids(sync_client, settings.names.events)
    assert [seq_of(d) for d in stream_docs(sync_client, settings.names.events)] == list(range(500))


async def test_an_invalid_event_raises_with_its_codes_and_nothing_is_sent(
    settings: Settings, async_client: aredis.Redis, sync_client: redis.Redis
) -> None:
    producer = Producer(async_client, settings.names, settings.taxonomy)
    with pytest.raises(InvalidEvent) as single:
        await producer.publish(brewslm(stage="gold_set", reason_code="nope"))
    assert single.value.errors == ["invalid_stage:gold_set", "invalid_reason_code:nope"]
    assert "invalid_stage:gold_set" in str(single.value)
    # one bad event in a batch stops the whole batch before anything is sent
    batch = [*numbered(3), pulse(severity="info")]
    with pytest.raises(InvalidEvent) as many:
        await producer.publish_many(batch)
    assert many.value.errors == ["severity_mismatch:run.failed"]
    assert sync_client.xlen(settings.names.events) == 0


async def test_without_a_taxonomy_the_event_is_sent_as_is(
    settings: Settings, async_client: aredis.Redis, sync_client: redis.Redis
) -> None:
    # the validator downstream judges it; the producer only adds an event id
    producer = Producer(async_client, settings.names, taxonomy=None)
    await producer.publish({"stage": "gold_set", "anything": [1, 2]})
    (doc,) = stream_docs(sync_client, settings.names.events)
    assert doc["stage"] == "gold_set"
    assert doc["anything"] == [1, 2]
    assert doc["event_id"]


def test_sync_producer_publish_and_publish_many(
    settings: Settings, sync_client: redis.Redis
) -> None:
    producer = SyncProducer(sync_client, settings.names, settings.taxonomy)
    first = producer.publish(brewslm(payload={"seq": -1}))
    spy = PipelineSpy(sync_client)
    rest = producer.publish_many(numbered(100))
    assert spy.opened == [{"transaction": False}]
    ids = entry_ids(sync_client, settings.names.events)
    assert ids == [first, *rest]
    docs = stream_docs(sync_client, settings.names.events)
    assert [seq_of(d) for d in docs] == [-1, *range(100)]
    assert all(d["event_id"] for d in docs)


def test_sync_producer_rejects_client_side(settings: Settings, sync_client: redis.Redis) -> None:
    producer = SyncProducer(sync_client, settings.names, settings.taxonomy)
    with pytest.raises(InvalidEvent) as exc:
        producer.publish(brewslm(reason_code=DROP, severity="critical"))
    assert exc.value.errors == ["missing_reason_code"]
    assert exc.value.rejected.message
    assert sync_client.xlen(settings.names.events) == 0


def test_the_entries_carry_the_wire_format_any_client_can_read(
    settings: Settings, sync_client: redis.Redis
) -> None:
    SyncProducer(sync_client, settings.names, settings.taxonomy).publish(brewslm())
    ((_, fields),) = entries(sync_client, settings.names.events)
    assert set(fields) == {b"__data__"}
    assert isinstance(orjson.loads(fields[b"__data__"].decode("utf-8")), dict)
