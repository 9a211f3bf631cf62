"""Stories of `POST /api/events`: HTTP producers get the contract's verdict synchronously."""

from __future__ import annotations

import httpx
import orjson
import pytest
import redis

from shared.settings import Settings
from tests.integration.validator.helpers import good_event

pytestmark = pytest.mark.integration


async def test_a_valid_event_is_published_with_an_event_id(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given a valid event without an event id
    # when it is posted
    response = await http.post("/api/events", json=good_event(summary="from http"))
    # then it is accepted (202) and is on the incoming stream, with the generated id
    assert response.status_code == 202
    body = response.json()
    entries = sync_client.xrange(settings.names.events)
    assert [e[0].decode() for e in entries] == [body["entry_id"]]
    published = orjson.loads(entries[0][1][b"__data__"])
    assert published["event_id"] == body["event_id"] and published["summary"] == "from http"


async def test_a_given_event_id_is_kept_and_pulse_events_are_accepted(
    http: httpx.AsyncClient,
) -> None:
    event = {"run_id": "r-1", "event_type": "run.completed", "severity": "info",
             "created_at": "2026-05-01T00:00:00Z", "event_id": "my-id-1"}  # fmt: skip
    response = await http.post("/api/events", json=event)
    assert response.status_code == 202 and response.json()["event_id"] == "my-id-1"


@pytest.mark.parametrize(
    ("body", "codes"),
    [
        (good_event(severity="error", reason_code="nope"), ["invalid_reason_code:nope"]),
        (good_event(severity="error"), ["missing_reason_code"]),
        (good_event(stage="lunch", severity="loud"),
         ["invalid_stage:lunch", "invalid_severity:loud"]),
        ({"hello": "world"}, ["unknown_dialect"]),
        ([1, 2], ["schema_violation:$"]),
    ],
)  # fmt: skip
async def test_an_invalid_event_is_422_with_every_error_code_and_nothing_published(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings, body: object,
    codes: list[str],
) -> None:  # fmt: skip
    response = await http.post("/api/events", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_event"
    assert response.json()["errors"] == codes
    assert response.json()["message"]
    assert sync_client.xlen(settings.names.events) == 0


async def test_malformed_json_and_oversized_events_are_refused(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    broken = await http.post(
        "/api/events", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["errors"] == ["malformed_json"]
    # an event over max_event_bytes is the contract's payload_too_large...
    big = good_event(summary="x" * 10, payload={"blob": "y" * settings.max_event_bytes})
    too_large = await http.post("/api/events", json=big)
    assert too_large.status_code == 422 and too_large.json()["errors"] == ["payload_too_large"]
    # ...and a body far beyond it is cut off before it is read: 413
    huge = b"x" * (settings.max_event_bytes * 5)
    cut = await http.post("/api/events", content=huge)
    assert cut.status_code == 413 and cut.json()["error"] == "body_too_large"


async def test_a_streamed_body_without_length_is_cut_off_too(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"z" * settings.max_event_bytes

    response = await http.post("/api/events", content=chunks())
    assert response.status_code == 413
