"""Stories of ``GET /api/runs/{run_id}/family``: a run's parents and children over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration

Seed = Callable[..., Awaitable[int]]


async def test_a_run_family_has_its_chain_and_children(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # Given autopilot -> exp-1 -> (exp-1a, pulse-1), with odd characters in one run id
    await seed_history(
        brewslm("autopilot", at(0), stage="autopilot", event_id="a"),
        brewslm("exp-1", at(1), parent_run_id="autopilot", event_id="e"),
        brewslm("exp-1a", at(2), parent_run_id="exp-1", event_id="c1"),
        pulse("pulse/1 é", at(3), parent_run_id="exp-1", event_id="c2"),
    )
    # When the middle run's family is read
    response = await http.get("/api/runs/exp-1/family")
    # Then it names its parent chain and its children with their spans
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["run_id"], body["parent_run_id"], body["chain_end"]) == (
        "exp-1", "autopilot", "root",
    )  # fmt: skip
    assert [a["run_id"] for a in body["ancestors"]] == ["autopilot"]
    assert [c["run_id"] for c in body["children"]] == ["exp-1a", "pulse/1 é"]
    assert body["children"][0]["first_ts"] == at(2).isoformat().replace("+00:00", "Z")
    # and a run id with a slash is a path like the events route's
    child = await http.get("/api/runs/pulse%2F1%20%C3%A9/family")
    assert child.status_code == 200 and child.json()["ancestors"][0]["run_id"] == "exp-1"
    # and the child list is bounded by ?limit=
    one = (await http.get("/api/runs/exp-1/family?limit=1")).json()
    assert len(one["children"]) == 1 and one["more_children"] is True


async def test_an_unknown_run_family_is_404_and_bad_limits_422(http: httpx.AsyncClient) -> None:
    missing = await http.get("/api/runs/nobody/family")
    assert missing.status_code == 404
    assert missing.json() == {"error": "run_not_found", "message": "no run nobody", "run": "nobody"}
    for query in ("limit=0", "limit=1001", "limit=x"):
        assert (await http.get(f"/api/runs/r/family?{query}")).status_code == 422, query
    # a run id too long for any run is refused, NUL is just a run id nobody has
    assert (await http.get("/api/runs/" + "x" * 257 + "/family")).status_code == 422
    assert (await http.get("/api/runs/a%00b/family")).status_code == 404
