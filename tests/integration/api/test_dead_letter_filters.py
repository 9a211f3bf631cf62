"""Stories of the dead-letter filters over HTTP: stage, source and before on the listing and
on the redrive body, each refusal with its stable code."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from shared.settings import Settings
from tests.unit.ops.builders import dead_fields

pytestmark = pytest.mark.integration


def add(client: redis.Redis, settings: Settings, code: str, **kwargs: Any) -> str:
    """One dead letter (back-dated by `age`), straight onto the dead-letter stream."""
    age: timedelta | None = kwargs.pop("age", None)
    kwargs.setdefault("source_stream", settings.names.events)
    at = "*" if age is None else f"{int((datetime.now(UTC) - age).timestamp() * 1000)}-*"
    entry: Any = client.xadd(settings.names.dead, dead_fields([code], **kwargs), id=at)  # type: ignore[arg-type]
    return str(entry.decode())


def seed(client: redis.Redis, settings: Settings) -> dict[str, str]:
    valid = settings.names.valid
    return {
        "old": add(client, settings, "persist_rejected", age=timedelta(days=1),
                   stage="persister", source_stream=valid),
        "validator": add(client, settings, "malformed_json"),
        "persister": add(client, settings, "persist_rejected", stage="persister",
                         source_stream=valid),
    }  # fmt: skip


async def ids(http: httpx.AsyncClient, query: str) -> list[str]:
    response = await http.get(f"/api/dead-letters?{query}")
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_the_listing_filters_by_stage_source_and_before(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    letters = seed(sync_client, settings)
    assert await ids(http, "stage=persister") == [letters["old"], letters["persister"]]
    assert await ids(http, "source=events") == [letters["validator"]]
    assert await ids(http, "stage=validator&stage=persister&before=1h") == [letters["old"]]
    assert await ids(http, "source=valid&source=events&since=1h") == [
        letters["validator"], letters["persister"],
    ]  # fmt: skip


async def test_a_redrive_with_the_listing_filter_moves_what_it_lists(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
    sync_client: redis.Redis,
    settings: Settings,
) -> None:
    # Given a listing of persister dead letters older than an hour, and a token for writes
    http = await make_client(api_token="s3cret")
    letters = seed(sync_client, settings)
    shown = await ids(http, "stage=persister&source=valid&before=1h")
    body = {"stages": ["persister"], "sources": ["valid"], "before": "1h"}
    auth = {"authorization": "Bearer s3cret"}
    # When the same filter is previewed, then redriven
    preview = await http.post("/api/dead-letters/redrive", json={**body, "dry_run": True},
                              headers=auth)  # fmt: skip
    done = await http.post("/api/dead-letters/redrive", json=body, headers=auth)
    # Then both name exactly what was listed, and it is back on the incoming stream
    assert preview.status_code == done.status_code == 200, done.text
    assert preview.json()["matched"] == 1 and preview.json()["moved"] == 0
    assert list(done.json()["moved_ids"]) == shown == [letters["old"]]
    assert sync_client.xlen(settings.names.events) == 1
    assert await ids(http, "stage=persister") == [letters["persister"]]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("stage=api", "invalid_stage_filter"),
        ("stage=validator&stage=%00", "invalid_stage_filter"),
        ("source=dead", "invalid_source_filter"),
        ("source=%7Bruntime%7D%3Aevents", "invalid_source_filter"),  # a raw key, not a role
        ("before=yesterday", "invalid_parameter"),
    ],
)
async def test_a_listing_filter_that_is_none_is_a_422_with_its_code(
    http: httpx.AsyncClient, query: str, code: str
) -> None:
    response = await http.get(f"/api/dead-letters?{query}")
    assert response.status_code == 422 and response.json()["error"] == code, response.text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"stages": ["api"]}, "invalid_stage_filter"),
        ({"sources": ["dead"]}, "invalid_source_filter"),
        ({"stages": [], "sources": []}, "redrive_filter_required"),
        ({"stages": "persister"}, "invalid_request"),  # a list, as the schema says
    ],
)
async def test_a_redrive_body_filter_that_is_none_is_a_422(
    http: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    response = await http.post("/api/dead-letters/redrive", json={**body, "dry_run": True})
    assert response.status_code == 422 and response.json()["error"] == code, response.text


async def test_the_document_lists_the_stages_and_sources(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    params = {p["name"]: p for p in doc["paths"]["/api/dead-letters"]["get"]["parameters"]}
    assert params["stage"]["schema"]["anyOf"][0]["items"]["enum"] == [
        "validator", "persister", "coach",
    ]  # fmt: skip
    assert params["source"]["schema"]["anyOf"][0]["items"]["enum"] == ["events", "valid"]
    body = doc["components"]["schemas"]["RedriveRequest"]
    assert body["properties"]["stages"]["items"]["enum"] == ["validator", "persister", "coach"]
