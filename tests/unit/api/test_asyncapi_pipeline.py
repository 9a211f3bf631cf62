"""The AsyncAPI document follows the pipeline declaration: one receive operation per stage, one
send operation per stream (plus the coach's change channel), each with its stream's models; each
outlet (the actions stream) is its writer's send operation and its outside reader's suggested
group; the dead-letter note names exactly the fields the codec writes."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from types import UnionType
from typing import Any, get_args

import httpx
import pytest

from services.api import asyncapi_handler
from services.api.app import create_app
from services.api.asyncapi import COACH_CHANGES, dead_letter_fields, outlet_reader_title
from shared.models import ActionRequest, CoachChange, DeadLetter, PulseEvent, RunEvent
from shared.pipeline import PIPELINE
from shared.settings import Settings
from shared.wire import dead_letter_fields as encode_dead_letter

SETTINGS = Settings(namespace="spec1", _env_file=None)  # type: ignore[call-arg]
NAMES = SETTINGS.names


@pytest.fixture
async def served() -> dict[str, Any]:
    """The document as ``GET /asyncapi.json`` serves it (the app without its lifespan)."""
    transport = httpx.ASGITransport(app=create_app(SETTINGS))
    async with httpx.AsyncClient(transport=transport, base_url="http://runbus.test") as client:
        response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def models(message: Any) -> set[str]:
    """Names of the models a stream declares (one class or a union of them)."""
    members = get_args(message) if isinstance(message, UnionType) else (message,)
    return {m.__name__ for m in members}


def last(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def payload_models(doc: dict[str, Any], channel: str) -> set[str]:
    """Names of the schemas the one message of `channel` carries (a union is one anyOf)."""
    (ref,) = (m["$ref"] for m in doc["channels"][channel]["messages"].values())
    payload = doc["components"]["messages"][last(ref)]["payload"]["$ref"]
    target = doc["components"]["schemas"][last(payload)]
    return {last(r["$ref"]) for r in target["anyOf"]} if "anyOf" in target else {last(payload)}


def expected() -> dict[str, tuple[str, str, Any]]:
    """(address, action, message model) of every channel, derived from PIPELINE."""
    channels = {
        stage.name: (NAMES.stream(stage.reads), "receive", PIPELINE.stream(stage.reads).message)
        for stage in PIPELINE.stages
    }
    for stream in PIPELINE.streams:
        channels[stream.title] = (stream.key(NAMES), "send", stream.message)
    channels[COACH_CHANGES[0]] = (NAMES.coach_changes, "send", CoachChange)
    for outlet in PIPELINE.outlets:
        channels[outlet.title] = (outlet.key(NAMES), "send", outlet.message)
        channels[outlet_reader_title(outlet)] = (outlet.key(NAMES), "receive", outlet.message)
    return channels


def test_channels_and_operations_are_the_pipelines(served: dict[str, Any]) -> None:
    want = expected()
    assert set(served["channels"]) == set(want) == set(served["operations"])
    for name, (address, action, message) in want.items():
        assert served["channels"][name]["address"] == address, name
        assert served["operations"][name]["action"] == action, name
        assert served["operations"][name]["channel"]["$ref"] == f"#/channels/{name}"
        assert payload_models(served, name) == models(message), name


@pytest.mark.parametrize("stage", PIPELINE.stages, ids=PIPELINE.stage_names)
def test_each_stage_is_a_subscriber_of_its_group(served: dict[str, Any], stage: Any) -> None:
    channel = served["channels"][stage.name]
    binding = channel["bindings"]["redis"]
    assert binding["groupName"] == stage.group and binding["method"] == "xreadgroup"
    assert binding["consumerName"] == f"{stage.name}-<host>-<slot>"
    assert channel["description"] == stage.description


def test_the_actions_stream_is_one_for_the_bus_with_its_schema_and_suggested_group(
    served: dict[str, Any],
) -> None:
    # The API writes action requests to one stream under the namespace's own tag
    channel = served["channels"]["actions"]
    assert channel["address"] == NAMES.actions == "{spec1}:actions"
    assert served["operations"]["actions"]["action"] == "send"
    assert payload_models(served, "actions") == {ActionRequest.__name__}
    schema = served["components"]["schemas"][ActionRequest.__name__]
    assert set(schema["properties"]) == set(ActionRequest.model_fields)
    assert schema["properties"]["kind"]["enum"] == [
        "navigate", "run_playbook", "augment_from_cluster"
    ]  # fmt: skip
    assert all(p.get("description") for p in schema["properties"].values())
    # And the platform reads it as the suggested group, named in the description too
    reader = served["channels"]["platform-actions"]
    assert reader["address"] == NAMES.actions
    assert reader["bindings"]["redis"]["groupName"] == "platform"
    assert reader["bindings"]["redis"]["method"] == "xreadgroup"
    assert "`api` writes `actions`" in served["info"]["description"]
    assert "suggested group `platform`" in served["info"]["description"]


def test_the_events_stream_is_a_union_of_both_dialects(served: dict[str, Any]) -> None:
    # The union survives the handler: a subscriber's schema is read from its signature
    assert payload_models(served, "validator") == {RunEvent.__name__, PulseEvent.__name__}


def test_the_dead_letter_note_names_exactly_the_codecs_fields(served: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    dead_letter = DeadLetter(
        errors=["e"], message="m", original=b"{}", original_fields={"trace": b"t"},
        source_stream="s", source_id="0-1", group="g", consumer="c", stage="validator",
        delivery_count=1, first_seen=now, dead_at=now, taxonomy_version="1",
        service_version="0", hint={},
    )  # fmt: skip
    encoded = {k.decode() for k in encode_dead_letter(dead_letter)}
    named = {f.split(" ", 1)[0] for f in dead_letter_fields()}
    flat = {k for k in encoded if not k.startswith("orig:")}
    assert named == flat | {"orig:<name>"}
    assert "orig:trace" in encoded
    dead = next(s for s in PIPELINE.streams if s.message is DeadLetter)
    note = served["channels"][dead.title]["description"]
    assert note.startswith(dead.description) and all(f in note for f in dead_letter_fields())


def test_the_handler_annotation_is_evaluated_python() -> None:
    # No postponed annotations in that module: the signature holds the model itself
    assert not hasattr(asyncapi_handler, "annotations")
    handle = asyncapi_handler.typed_handler(RunEvent | PulseEvent)
    assert inspect.signature(handle).parameters["message"].annotation == RunEvent | PulseEvent
