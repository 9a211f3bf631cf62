"""Stories of the bearer token: writes need it when it is set; reads too when configured."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.api.app import create_app
from shared.settings import REPO_ROOT, Settings
from tests.integration.validator.helpers import good_event

pytestmark = pytest.mark.integration

Make = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_writes_need_the_token_when_one_is_set(make_client: Make) -> None:
    # given an API with a token
    http = await make_client(api_token="s3cret-token")
    # then a post without it, or with another one, is 401 with a Bearer challenge
    missing = await http.post("/api/events", json=good_event())
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = await http.post(
        "/api/events", json=good_event(), headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    redrive = await http.post("/api/dead-letters/redrive", json={"reasons": ["x"]})
    assert redrive.status_code == 401
    # and with the right token it is accepted
    right = await http.post(
        "/api/events", json=good_event(), headers={"Authorization": "Bearer s3cret-token"}
    )
    assert right.status_code == 202
    # while reads stay open
    assert (await http.get("/api/status")).status_code == 200


async def test_reads_need_the_token_when_configured(make_client: Make) -> None:
    http = await make_client(api_token="s3cret-token", api_read_token_required=True)
    for path in ("/api/status", "/api/dead-letters", "/api/projects/1/coach", "/metrics",
                 "/api/runs/r/events"):  # fmt: skip
        assert (await http.get(path)).status_code == 401, path
    ok = await http.get("/api/status", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    # liveness and readiness stay open for orchestrators
    assert (await http.get("/healthz")).status_code == 200


async def test_no_token_configured_means_open_writes(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/events", json=good_event())
    assert response.status_code == 202


def write_operations() -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document that changes something: (METHOD, path)."""
    doc = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return [
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    ]


async def test_every_write_operation_needs_the_token_and_the_docs_say_so(make_client: Make) -> None:
    http = await make_client(api_token="s3cret-token")
    security = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("## Security")[1]
    security = security.split("\n## ", 1)[0]
    writes = write_operations()
    assert len(writes) >= 4
    for method, path in writes:
        # the route refuses a client without the token, whatever the body
        concrete = re.sub(r"\{[^}]+\}", lambda m: "1" if "id" in m[0] else "training", path)
        reply = await http.request(method, concrete, json={})
        assert reply.status_code == 401, (method, path, reply.status_code)
        # and the security section names it
        assert f"`{method} {path}`" in security, f"docs/api.md's Security omits {method} {path}"
