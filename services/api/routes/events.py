"""``POST /api/events``: ingestion for producers that speak HTTP rather than Redis."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.api.errors import ApiError
from services.api.models import EventAccepted, InvalidEventBody, responses
from services.api.state import State, WriteAccess
from shared.models import PulseEvent, RunEvent
from shared.producer import Producer
from shared.validation import Accepted, validate_bytes

router = APIRouter(prefix="/api", tags=["events"], dependencies=[WriteAccess])

_BODY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One event: a BrewSLM RunEvent or a Pulse event (UTF-8 JSON).",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/RunEvent"},
                        {"$ref": "#/components/schemas/PulseEvent"},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    openapi_extra=_BODY_SCHEMA,
    responses={
        **responses(401, 413, 503),
        422: {"model": InvalidEventBody, "description": "The event breaks the contract."},
    },
)
async def publish_event(state: State, request: Request) -> JSONResponse:
    """Validate one event against the contract and publish it to the incoming stream.

    Invalid events get 422 with every error code (nothing is published); valid ones 202 with
    the entry id and the event id (generated when the event has none). While Redis is full
    (its maxmemory reached) the answer is 503 `redis_full` with Retry-After: nothing was
    published, retry later.
    """
    raw = await request.body()
    verdict = validate_bytes(raw, state.settings.taxonomy, state.settings.max_event_bytes)
    if not isinstance(verdict, Accepted):
        raise ApiError(422, "invalid_event", verdict.message, extra={"errors": verdict.errors})
    event = verdict.event
    if event.event_id is None:
        event = event.model_copy(update={"event_id": uuid.uuid4().hex})
    producer = Producer(state.redis, state.settings.names)
    entry_id = await producer.publish(event)
    body = EventAccepted(entry_id=entry_id, event_id=str(event.event_id))
    return JSONResponse(body.model_dump(), status_code=202)


#: Models the OpenAPI document must define for the request body above.
BODY_MODELS = (RunEvent, PulseEvent)
