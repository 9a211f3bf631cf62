"""Issue 11 over HTTP: stream ids Redis cannot hold, the redrive guard, method and body edges,
and the OpenAPI document stating the rules (enums, patterns) the routes apply."""

from __future__ import annotations

import httpx
import pytest
import redis

from services.history.params import ALL_SEVERITIES, SEED_PULSE_TYPES
from services.ops.stream_ids import LAST_ID
from shared.models import COACH_STAGES
from shared.settings import Settings
from shared.taxonomy import STAGES
from tests.unit.ops.builders import dead_fields

pytestmark = pytest.mark.integration

TOO_BIG = "99999999999999999999-0"


def add_dead(client: redis.Redis, settings: Settings, *codes: str) -> list[str]:
    """One dead letter per code, straight onto the dead-letter stream."""
    return [
        client.xadd(settings.names.dead, dead_fields([code])).decode()  # type: ignore[arg-type, union-attr]
        for code in codes
    ]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/dead-letters/{TOO_BIG}", None),
        ("GET", "/api/dead-letters/1-18446744073709551616", None),
        ("GET", f"/api/dead-letters?after_id={TOO_BIG}", None),
        ("GET", "/api/dead-letters?before_id=01-0", None),
        # after_id decides the page, but an ignored bad before_id is still refused (fuzzer)
        ("GET", "/api/dead-letters?after_id=1-0&before_id=x%F3", None),
        ("POST", "/api/dead-letters/redrive", {"ids": [TOO_BIG]}),
    ],
)
async def test_an_id_redis_cannot_hold_is_422_invalid_stream_id(
    http: httpx.AsyncClient,
    sync_client: redis.Redis,
    settings: Settings,
    method: str,
    path: str,
    body: object,
) -> None:
    # Given a dead letter (so the stream exists and Redis would be asked)
    add_dead(sync_client, settings, "malformed_json")
    # When an id beyond two unsigned 64-bit parts is typed in a path, a query or a body
    response = await http.request(method, path, json=body)
    # Then a 422 with the stable code, not a 500 from Redis
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_stream_id"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/dead-letters?reason=%C2%BB%C3%8Dq", None),
        ("GET", "/api/dead-letters?reason=Malformed_JSON", None),
        ("GET", "/api/dead-letters?reason=false", None),
        ("POST", "/api/dead-letters/redrive", {"reasons": [":x"]}),
    ],
)
async def test_a_reason_filter_that_no_code_can_match_is_refused(
    http: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    # When a reason filter is not a code family (snake case, optionally ":detail")
    response = await http.request(method, path, json=body)
    # Then a 422, not an empty page that looks like "no such dead letters" (fuzzer finding)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("path", ["/api/dead-letters/%2F", "/api/projects/1/coach/", "/healthz/"])
async def test_a_trailing_slash_is_a_json_404_not_a_redirect(
    http: httpx.AsyncClient, path: str
) -> None:
    # When a path ends in a slash (typed, or an id that is a slash)
    response = await http.get(path)
    # Then the JSON 404 of any unknown path (the hypothesis read fuzz found an empty 307)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


async def test_bounds_at_the_ends_of_the_id_space_are_empty_pages(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # Given dead letters
    add_dead(sync_client, settings, "malformed_json", "malformed_json")
    # When asking for what comes after the last possible id, or before 0-0
    after = await http.get(f"/api/dead-letters?after_id={LAST_ID}")
    before = await http.get("/api/dead-letters?before_id=0-0")
    # Then nothing (Redis refuses those exclusive bounds: no 500)
    assert after.status_code == 200 and after.json()["items"] == []
    assert before.status_code == 200 and before.json()["items"] == []
    # And the largest id itself is a fine id that names no dead letter
    missing = await http.get(f"/api/dead-letters/{LAST_ID}")
    assert missing.status_code == 404 and missing.json()["error"] == "dead_letter_not_found"


async def test_a_zero_duration_is_a_filter_and_an_empty_one_needs_all(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # Given three dead letters
    add_dead(sync_client, settings, "malformed_json", "not_utf8", "malformed_json")
    # When a redrive says since 0s: younger than nothing
    zero = await http.post("/api/dead-letters/redrive", json={"since": "0s"})
    # Then it is a filter that matches none, and nothing moved
    assert zero.status_code == 200, zero.text
    assert (zero.json()["matched"], zero.json()["moved"]) == (0, 0)
    assert sync_client.xlen(settings.names.dead) == 3
    # When the body names no filter, it is refused with a stable code
    empty = await http.post("/api/dead-letters/redrive", json={"dry_run": True})
    assert empty.status_code == 422 and empty.json()["error"] == "redrive_filter_required"
    # When it says all (dry run), every dead letter counts, with every reason family named
    every = await http.post("/api/dead-letters/redrive", json={"all": True, "dry_run": True})
    assert every.status_code == 200 and every.json()["matched"] == 3
    families = {c["key"]: c["count"] for c in every.json()["by_family"]}
    assert families == {"malformed_json": 2, "not_utf8": 1}


async def test_a_body_that_is_not_json_typed_as_the_schema_says_is_refused(
    http: httpx.AsyncClient,
) -> None:
    # "dry_run": 0 is not a boolean (strict), and the body must be UTF-8
    coerced = await http.post("/api/dead-letters/redrive", json={"all": True, "dry_run": 0})
    assert coerced.status_code == 422 and coerced.json()["error"] == "invalid_request"
    raw = await http.post(
        "/api/dead-letters/redrive",
        content=b'{"reasons": ["\xff"]}',
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()["error"] == "invalid_body"


async def test_get_on_the_redrive_route_is_405_allow_post(http: httpx.AsyncClient) -> None:
    for method in ("GET", "OPTIONS", "DELETE"):
        response = await http.request(method, "/api/dead-letters/redrive")
        assert response.status_code == 405, (method, response.text)
        assert response.headers["allow"] == "POST"
        assert response.json()["error"] == "method_not_allowed"


async def test_the_document_states_the_rules_the_routes_apply(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    paths = doc["paths"]
    project = {
        p["name"]: p["schema"]
        for p in paths["/api/projects/{project_id}/events"]["get"]["parameters"]
    }
    assert project["stage"]["enum"] == list(STAGES)
    assert project["severity"]["enum"] == list(ALL_SEVERITIES)
    assert project["event_type"]["enum"] == list(SEED_PULSE_TYPES)
    assert project["limit"]["minimum"] == 1 and "pattern" in project["cursor"]
    coach = {
        p["name"]: p["schema"]
        for p in paths["/api/projects/{project_id}/coach/{stage}"]["get"]["parameters"]
    }
    assert coach["stage"]["enum"] == list(COACH_STAGES)
    entry = paths["/api/dead-letters/{entry_id}"]["get"]
    assert "pattern" in entry["parameters"][0]["schema"]
    assert "400" in paths["/api/dead-letters/redrive"]["post"]["responses"]
    # /api/status once, under one tag
    assert [p for p in paths if p.endswith("/status")] == ["/api/status"]
    assert paths["/api/status"]["get"]["tags"] == ["status"]
