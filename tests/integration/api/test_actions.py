"""Stories of the action routes: a click names the suggestion the user saw (version, index);
the server records the cached suggestion's action on the actions stream, or refuses with a
stable code; the newest requests can be listed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aredis

from shared.models import ActionRequest, CoachDocument
from shared.settings import Settings
from shared.wire import parse_action
from tests.integration.api.test_coach import document

pytestmark = pytest.mark.integration

Put = Callable[[CoachDocument], Awaitable[None]]
Make = Callable[..., Awaitable[httpx.AsyncClient]]
CLICK = "/api/projects/7/coach/training/actions"


async def stream(client: aredis.Redis, settings: Settings) -> list[ActionRequest]:
    found: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(settings.names.actions)  # type: ignore[assignment]
    return [parse_action(fields) for _, fields in found]


async def test_a_click_is_recorded_once_from_the_cached_suggestion(
    make_client: Make, seed_coach: Put, async_client: aredis.Redis, settings: Settings
) -> None:
    # given a cached training document at version 4 and an API with a URL template
    await seed_coach(document(7, "training", 4, "Training ran out of GPU memory"))
    http = await make_client(action_url_template="https://p.example/{project_id}/{target}")
    # when the user clicks its button
    response = await http.post(CLICK, json={"version": 4, "index": 0, "who": "ana"})
    # then it is 201 with the request, built from the cache, and it is the one entry written
    assert response.status_code == 201, response.text
    body = response.json()
    assert {k: body[k] for k in ("who", "project_id", "stage", "version", "index")} == {
        "who": "ana", "project_id": 7, "stage": "training", "version": 4, "index": 0
    }  # fmt: skip
    assert (body["title"], body["kind"], body["label"]) == (
        "Training ran out of GPU memory", "navigate", "Go"
    )  # fmt: skip
    assert body["params"] == {"target": "somewhere"}
    assert body["url"] == "https://p.example/7/somewhere"
    assert [r.model_dump(mode="json") for r in await stream(async_client, settings)] == [body]
    # and the listing shows it
    listed = await http.get("/api/actions")
    assert listed.status_code == 200 and listed.json() == {"actions": [body]}


async def test_a_stale_version_is_409_and_writes_nothing(
    http: httpx.AsyncClient, seed_coach: Put, async_client: aredis.Redis, settings: Settings
) -> None:
    # given the user saw version 4 and the coach has since written version 5
    await seed_coach(document(7, "training", 5, "New advice"))
    # when they click what they saw
    response = await http.post(CLICK, json={"version": 4, "index": 0})
    # then the page learns to refresh, and nothing is on the stream
    assert response.status_code == 409
    assert response.json()["error"] == "suggestion_changed" and response.json()["version"] == 5
    assert await stream(async_client, settings) == []


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/projects/99/coach/training/actions", {"version": 4, "index": 0},
         "project_not_found"),
        ("/api/projects/7/coach/eval/actions", {"version": 4, "index": 0}, "stage_not_found"),
        ("/api/projects/7/coach/deployment/actions", {"version": 4, "index": 0},
         "stage_not_found"),
        (CLICK, {"version": 4, "index": 1}, "suggestion_not_found"),
    ],
)  # fmt: skip
async def test_unknown_things_are_404_and_write_nothing(
    http: httpx.AsyncClient,
    seed_coach: Put,
    async_client: aredis.Redis,
    settings: Settings,
    path: str,
    body: dict[str, Any],
    code: str,
) -> None:
    await seed_coach(document(7, "training", 4))
    response = await http.post(path, json=body)
    assert response.status_code == 404 and response.json()["error"] == code
    assert await stream(async_client, settings) == []


@pytest.mark.parametrize(
    "body",
    [
        {"index": 0},
        {"version": "4", "index": 0},  # strict: no coercion
        {"version": 4, "index": -1},
        {"version": 4, "index": 0, "who": ""},
        {"version": 4, "index": 0, "kind": "run_playbook"},  # the client never names the action
        {"version": 4, "index": 0, "params": {"playbook": "drop"}},
    ],
)
async def test_a_malformed_click_is_422_and_writes_nothing(
    http: httpx.AsyncClient,
    seed_coach: Put,
    async_client: aredis.Redis,
    settings: Settings,
    body: dict[str, Any],
) -> None:
    await seed_coach(document(7, "training", 4))
    response = await http.post(CLICK, json=body)
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    assert await stream(async_client, settings) == []


async def test_clicks_need_the_token_and_the_listing_follows_read_access(
    make_client: Make, seed_coach: Put
) -> None:
    await seed_coach(document(7, "training", 4))
    # given an API with a token: a click without it is 401, with it 201; the listing is a read
    http = await make_client(api_token="s3cret", operator="ops-1")
    assert (await http.post(CLICK, json={"version": 4, "index": 0})).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    done = await http.post(CLICK, json={"version": 4, "index": 0}, headers=auth)
    assert done.status_code == 201 and done.json()["who"] == "ops-1"
    assert (await http.get("/api/actions")).status_code == 200
    # and when reads need the token too, so does the listing
    closed = await make_client(api_token="s3cret", api_read_token_required=True)
    assert (await closed.get("/api/actions")).status_code == 401
    assert (await closed.get("/api/actions", headers=auth)).json()["actions"][0]["who"] == "ops-1"


async def test_the_listing_is_newest_first_and_limited(
    http: httpx.AsyncClient, seed_coach: Put
) -> None:
    await seed_coach(document(7, "training", 4))
    ids = []
    for who in ("a", "b", "c"):
        made = await http.post(CLICK, json={"version": 4, "index": 0, "who": who})
        ids.append(made.json()["request_id"])
    listed = (await http.get("/api/actions", params={"limit": 2})).json()["actions"]
    assert [r["request_id"] for r in listed] == ids[::-1][:2]
    assert (await http.get("/api/actions", params={"limit": 0})).status_code == 422
    assert (await http.get("/api/actions", params={"limit": 1001})).status_code == 422


async def test_the_openapi_document_describes_both_routes(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    post = doc["paths"]["/api/projects/{project_id}/coach/{stage}/actions"]["post"]
    assert set(post["responses"]) >= {"201", "401", "404", "409", "422", "503"}
    created = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["$ref"].endswith("/ActionRequest")
    assert "suggestion_changed" in post["responses"]["409"]["description"]
    body = doc["components"]["schemas"]["ActionClick"]
    assert set(body["properties"]) == {"version", "index", "who"}
    assert body["additionalProperties"] is False
    get = doc["paths"]["/api/actions"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ActionList"
    )
