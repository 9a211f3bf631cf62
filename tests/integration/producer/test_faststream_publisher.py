"""Story: a service publishing with FastStream's own Redis publisher is understood by the bus."""

from __future__ import annotations

import pytest
import redis
from faststream.redis import RedisBroker

from shared.models import RunEvent
from shared.settings import Settings
from shared.validation import Accepted, validate_bytes
from shared.wire import DATA_FIELD, unwrap_body
from tests.conftest import REDIS_URL
from tests.integration.producer.helpers import entries
from tests.unit.contract.events import brewslm, pulse

pytestmark = pytest.mark.integration


async def test_faststream_published_events_unwrap_to_valid_bodies(
    settings: Settings, sync_client: redis.Redis
) -> None:
    # given a FastStream service with its own broker and publisher
    model = RunEvent.model_validate(brewslm(event_id="fs-1"))
    as_dict = pulse(event_id="fs-2")
    async with RedisBroker(REDIS_URL) as broker:
        # when it publishes a pydantic model and a dict to the incoming stream
        await broker.publish(model, stream=settings.names.events)
        await broker.publish(as_dict, stream=settings.names.events)
    # then each entry is FastStream's binary format in __data__, and unwraps to a valid event
    stored = entries(sync_client, settings.names.events)
    assert len(stored) == 2
    results = []
    for _, fields in stored:
        assert fields[DATA_FIELD].startswith(b"\x89BIN")
        body = unwrap_body(fields[DATA_FIELD])
        assert body is not None
        results.append(validate_bytes(body, settings.taxonomy))
    assert all(isinstance(r, Accepted) for r in results)
    assert [r.event.event_id for r in results if isinstance(r, Accepted)] == ["fs-1", "fs-2"]
    first = results[0]
    assert isinstance(first, Accepted)
    assert first.event == model
