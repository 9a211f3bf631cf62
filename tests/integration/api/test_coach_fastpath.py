"""The coach stage read answered before routing (`services.api.fastpath`) answers exactly as
the route does, and leaves everything else to it: tokens, misses, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.api.fastpath import PATH
from shared.models import CoachDocument
from tests.integration.api.test_coach import document

pytestmark = pytest.mark.integration

Make = Callable[..., Awaitable[httpx.AsyncClient]]
Put = Callable[[CoachDocument], Awaitable[None]]
#: The same document by the fast path (canonical id) and by the route (a leading zero, which
#: the route parses as 7 and the fast path leaves to it).
FAST, ROUTED = "/api/projects/7/coach/training", "/api/projects/07/coach/training"


def shown(answer: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in answer.headers.items() if k != "date"}
    return answer.status_code, answer.content, headers


def test_only_canonical_ids_take_the_fast_path() -> None:
    assert PATH.fullmatch(FAST) and not PATH.fullmatch(ROUTED)
    assert not PATH.fullmatch("/api/projects/-1/coach/data")
    assert not PATH.fullmatch("/api/projects/7/coach/data/actions")


async def test_the_fast_path_answers_byte_for_byte_as_the_route(
    http: httpx.AsyncClient, seed_coach: Put
) -> None:
    await seed_coach(document(7, "training", 4, "Training ran out of GPU memory"))
    for headers in ({}, {"If-None-Match": '"4"'}, {"If-None-Match": '"3"'}, {"If-None-Match": "*"},
                    {"If-None-Match": 'W/"4", "9"'}):  # fmt: skip
        fast, routed = (
            await http.get(FAST, headers=headers),
            await http.get(ROUTED, headers=headers),
        )
        assert shown(fast) == shown(routed), headers
    assert (await http.get(FAST, headers={"If-None-Match": '"4"'})).status_code == 304


async def test_misses_go_to_the_route_for_their_404(
    http: httpx.AsyncClient, seed_coach: Put
) -> None:
    await seed_coach(document(7, "training", 1))
    assert (await http.get("/api/projects/7/coach/eval")).json()["error"] == "stage_not_found"
    assert (await http.get("/api/projects/8/coach/eval")).json()["error"] == "project_not_found"
    missing = await http.get("/api/projects/8/coach/eval", headers={"If-None-Match": "*"})
    assert missing.status_code == 404
    big = await http.get(f"/api/projects/{2**63}/coach/eval")
    assert big.status_code == 422


async def test_a_read_token_is_checked_before_the_fast_path_answers(
    make_client: Make, seed_coach: Put
) -> None:
    http = await make_client(api_token="s3cret", api_read_token_required=True)
    await seed_coach(document(7, "training", 2))
    refused = await http.get(FAST, headers={"If-None-Match": '"2"'})
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    wrong = await http.get(FAST, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert (await http.get(FAST, headers=good)).status_code == 200
    assert (await http.get(FAST, headers=good | {"If-None-Match": '"2"'})).status_code == 304


async def test_redis_gone_is_the_routes_503(make_client: Make, redis_server) -> None:  # type: ignore[no-untyped-def]
    server = redis_server()
    http = await make_client(redis_url=server.url)
    server.stop()
    for headers in ({}, {"If-None-Match": '"1"'}):
        answer = await http.get(FAST, headers=headers)
        assert answer.status_code == 503 and answer.json()["error"] == "redis_unavailable"
