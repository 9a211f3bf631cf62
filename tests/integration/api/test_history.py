"""Stories of the run-detail and project timeline endpoints (history read through the API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.history.base import MAX_PAGE
from services.history.family import MAX_CHILDREN
from tests.integration.history.factory import at, brewslm, pulse

pytestmark = pytest.mark.integration

Seed = Callable[..., Awaitable[int]]


async def test_a_run_timeline_has_both_dialects_in_event_time_order(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given a run with a BrewSLM and a Pulse event, stored out of order
    await seed_history(
        pulse("run-a", at(20), event_type="run.completed", event_id="p2"),
        brewslm("run-a", at(10), event_id="b1"),
    )
    # when its timeline is read
    response = await http.get("/api/runs/run-a/events")
    # then both come back, oldest first, each with its own dialect's fields
    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["event_id"] for e in events] == ["b1", "p2"]
    assert events[0]["stage"] == "training" and events[1]["event_type"] == "run.completed"
    assert response.json()["next_cursor"] is None


async def test_children_are_included_only_when_asked(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given a parent run and a child run nested under it
    await seed_history(
        brewslm("autopilot-1", at(1), stage="autopilot", event_id="parent"),
        brewslm("exp-9", at(2), parent_run_id="autopilot-1", event_id="child"),
    )
    # when the parent is read without and with ?children=true
    alone = (await http.get("/api/runs/autopilot-1/events")).json()["events"]
    family = (await http.get("/api/runs/autopilot-1/events?children=true")).json()["events"]
    # then only the second read includes the child's event
    assert [e["event_id"] for e in alone] == ["parent"]
    assert [e["event_id"] for e in family] == ["parent", "child"]


async def test_cursor_paging_walks_the_whole_run_once(
    http: httpx.AsyncClient, seed_history: Seed
) -> None:
    # given a run of five events
    await seed_history(*[brewslm("run-p", at(i), event_id=f"e{i}") for i in range(5)])
    # when it is read two at a time, following next_cursor
    seen: list[str] = []
    url = "/api/runs/run-p/events?limit=2"
    cursor = None
    for _ in range(5):
        response = await http.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert response.status_code == 200
        seen += [e["event_id"] for e in response.json()["events"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    # then every event came exactly once, in order
    assert seen == [f"e{i}" for i in range(5)]


async def test_run_ids_may_hold_any_character(http: httpx.AsyncClient, seed_history: Seed) -> None:
    # given a run id with a slash, a space and non-ASCII text
    await seed_history(brewslm("team/a run é", at(1), event_id="odd"))
    # when it is requested URL-encoded, it is found
    response = await http.get("/api/runs/team%2Fa%20run%20%C3%A9/events")
    assert response.status_code == 200
    assert [e["event_id"] for e in response.json()["events"]] == ["odd"]


async def test_unknown_run_is_404_with_a_json_body(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/runs/no-such-run/events")
    assert response.status_code == 404
    assert response.json()["error"] == "run_not_found"
    assert response.json()["run"] == "no-such-run"


@pytest.mark.parametrize(
    "query",
    ["cursor=not-a-cursor", "limit=0", "limit=100000", "children=perhaps", "cursor=eyJ4IjoxfQ"],
)
async def test_bad_run_parameters_are_422(
    http: httpx.AsyncClient, seed_history: Seed, query: str
) -> None:
    await seed_history(brewslm("run-q", at(1)))
    response = await http.get(f"/api/runs/run-q/events?{query}")
    assert response.status_code == 422
    assert response.json()["error"] in ("invalid_parameter", "invalid_request", "invalid_cursor")


@pytest.mark.parametrize(
    ("path", "maximum"),
    [
        ("/api/runs/run-q/events?limit=0", MAX_PAGE),
        ("/api/runs/run-q/events?limit=100000", MAX_PAGE),
        ("/api/runs/run-q/family?limit=0", MAX_CHILDREN),
        ("/api/runs/run-q/family?limit=1001", MAX_CHILDREN),
        ("/api/projects/1/events?limit=-5", MAX_PAGE),
    ],
)
async def test_a_page_size_out_of_bounds_is_the_cli_s_invalid_parameter(
    http: httpx.AsyncClient, seed_history: Seed, path: str, maximum: int
) -> None:
    # given a run, when a page size out of the one rule (services.history.params) is asked
    await seed_history(brewslm("run-q", at(1), project_id=1))
    response = await http.get(path)
    # then the refusal is the one `runbus history` prints for the same rule: code and message
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_parameter",
        "message": f"limit must be between 1 and {maximum}",
        "field": "limit",
    }


async def test_project_timeline_filters(http: httpx.AsyncClient, seed_history: Seed) -> None:
    # given a project with events of several stages, severities and codes over time
    await seed_history(
        brewslm("exp-1", at(0), project_id=3, event_id="info-train"),
        brewslm("exp-1", at(60), project_id=3, severity="error", reason_code="training_oom",
                event_id="oom"),
        brewslm("eval-1", at(120), project_id=3, stage="eval", event_id="eval"),
        pulse("p-1", at(180), project_id=3, event_type="lease.lost", severity="error",
              event_id="lease"),
        brewslm("exp-2", at(5), project_id=4, event_id="other-project"),
    )  # fmt: skip

    async def ids(query: str) -> list[str]:
        response = await http.get(f"/api/projects/3/events?{query}")
        assert response.status_code == 200, response.text
        return [e["event_id"] for e in response.json()["events"]]

    # then each filter narrows the project's timeline, and nothing of project 4 leaks in
    assert await ids("") == ["info-train", "oom", "eval", "lease"]
    assert await ids("stage=training") == ["info-train", "oom"]
    assert await ids("severity=error") == ["oom", "lease"]
    assert await ids("reason=training_oom") == ["oom"]
    assert await ids("event_type=lease.lost") == ["lease"]
    since, until = at(60).isoformat().replace("+", "%2B"), at(180).isoformat().replace("+", "%2B")
    assert await ids(f"since={since}&until={until}") == ["oom", "eval"]
    # and a filter matching nothing in a known project is an empty page, not a 404
    assert await ids("stage=deployment") == []


async def test_project_since_accepts_an_age(http: httpx.AsyncClient, seed_history: Seed) -> None:
    # given an old event of project 5
    await seed_history(brewslm("exp-5", at(0), project_id=5))
    # when asked for the last two hours only
    response = await http.get("/api/projects/5/events?since=2h")
    # then the old event is outside the window
    assert response.status_code == 200 and response.json()["events"] == []


async def test_unknown_project_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/projects/999/events")
    assert response.status_code == 404
    assert response.json() == {
        "error": "project_not_found", "message": "no project 999", "project": "999",
    }  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/abc/events",
        "/api/projects/-1/events",
        "/api/projects/99999999999999999999999/events",
        "/api/projects/1/events?stage=preprocessing",
        "/api/projects/1/events?severity=fatal",
        "/api/projects/1/events?since=yesterday",
        "/api/projects/1/events?until=2024-13-45",
        "/api/projects/1/events?limit=-5",
        "/api/projects/1/events?cursor=%00%01",
    ],
)
async def test_bad_project_parameters_are_422(
    http: httpx.AsyncClient, seed_history: Seed, path: str
) -> None:
    await seed_history(brewslm("exp-1", at(0), project_id=1))
    response = await http.get(path)
    assert response.status_code == 422, response.text
    assert set(response.json()) >= {"error", "message"}
