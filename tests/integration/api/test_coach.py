"""Stories of the coach endpoints: cached documents served with their version as an ETag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from shared.models import CoachDocument, NavigateAction, Suggestion

pytestmark = pytest.mark.integration

Put = Callable[[CoachDocument], Awaitable[None]]


def document(project_id: int, stage: str, version: int, title: str = "Fix it") -> CoachDocument:
    """A cached coach document with one suggestion."""
    suggestion = Suggestion(
        severity="warning", title=title, body="Because.",
        action=NavigateAction(label="Go", params={"target": "somewhere"}),
    )  # fmt: skip
    return CoachDocument(
        project_id=project_id, stage=stage, version=version,  # type: ignore[arg-type]
        computed_at=datetime(2026, 5, 1, tzinfo=UTC), source_id="1-0",
        taxonomy_version="tx-test", suggestions=[suggestion],
    )  # fmt: skip


async def test_a_stage_document_comes_with_its_version_as_etag(
    http: httpx.AsyncClient, seed_coach: Put
) -> None:
    # given a cached training document at version 4
    await seed_coach(document(7, "training", 4, "Training ran out of GPU memory"))
    # when a dashboard reads it
    response = await http.get("/api/projects/7/coach/training")
    # then it gets the document and the version as a strong ETag
    assert response.status_code == 200
    assert response.headers["etag"] == '"4"'
    body = response.json()
    assert body["version"] == 4 and body["suggestions"][0]["title"].startswith("Training ran")
    assert body["suggestions"][0]["action"]["kind"] == "navigate"


async def first_200(
    http: httpx.AsyncClient, path: str, etag: str, timeout: float = 10.0
) -> httpx.Response:
    """Poll `path` with `etag` until it answers 200 (a change is heard within the channel's
    delivery time); fail at the deadline or on anything but 304 before."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await http.get(path, headers={"If-None-Match": etag})
        if answer.status_code == 200:
            return answer
        assert answer.status_code == 304, answer.text
        assert time.monotonic() < deadline, f"{path} still 304 after {timeout}s"
        await asyncio.sleep(0.005)


async def test_if_none_match_gets_304_until_the_version_changes(
    http: httpx.AsyncClient, seed_coach: Put
) -> None:
    # given a dashboard that read version 4
    await seed_coach(document(7, "eval", 4))
    etag = (await http.get("/api/projects/7/coach/eval")).headers["etag"]
    # when it polls with If-None-Match, the answer is 304 without a body
    again = await http.get("/api/projects/7/coach/eval", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    weak = await http.get("/api/projects/7/coach/eval", headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    # and once the coach wrote version 5, the same poll gets the new document (as soon as the
    # change channel told this process: milliseconds)
    await seed_coach(document(7, "eval", 5, "New advice"))
    changed = await first_200(http, "/api/projects/7/coach/eval", etag)
    assert changed.headers["etag"] == '"5"'
    assert changed.json()["suggestions"][0]["title"] == "New advice"


async def test_the_project_view_has_every_stage_and_a_combined_etag(
    http: httpx.AsyncClient, seed_coach: Put
) -> None:
    # given two cached stages of project 8
    await seed_coach(document(8, "data", 2))
    await seed_coach(document(8, "gold_set", 3))
    # when the whole project is read
    response = await http.get("/api/projects/8/coach")
    # then both stages are there, and the ETag names every stage's version
    assert response.status_code == 200
    assert set(response.json()["stages"]) == {"data", "gold_set"}
    assert response.headers["etag"] == '"2-0-3-0-0"'
    # and a poll with that tag is 304, until any stage changes
    tag = {"If-None-Match": response.headers["etag"]}
    assert (await http.get("/api/projects/8/coach", headers=tag)).status_code == 304
    await seed_coach(document(8, "data", 3))
    assert (await http.get("/api/projects/8/coach", headers=tag)).status_code == 200


async def test_unknown_project_or_stage_is_404(http: httpx.AsyncClient, seed_coach: Put) -> None:
    await seed_coach(document(7, "training", 1))
    cases = {
        "/api/projects/404/coach": "project_not_found",
        "/api/projects/404/coach/training": "project_not_found",
        "/api/projects/7/coach/deployment": "stage_not_found",
        "/api/projects/7/coach/cleaning": "stage_not_found",  # known project, no document
    }
    for path, code in cases.items():
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == code, path


@pytest.mark.parametrize(
    "path", ["/api/projects/x/coach", "/api/projects/-3/coach/data", "/api/projects/1e3/coach"]
)
async def test_bad_project_ids_are_422(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
