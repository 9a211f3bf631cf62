"""The action requests page: what the platform was asked to do, as the actions stream holds it.

Given clicks recorded through the API (and a forged entry), when the page is opened, then it
lists them newest first with their fields, escaped, and links only http(s) URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aredis

from shared.models import ActionRequest, CoachDocument
from shared.settings import Settings
from shared.wire import action_fields
from tests.integration.api.test_coach import document

pytestmark = pytest.mark.integration

Put = Callable[[CoachDocument], Awaitable[None]]
Make = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_with_no_click_the_page_says_so(http: httpx.AsyncClient) -> None:
    page = await http.get("/ui/actions")
    assert page.status_code == 200 and 'id="no-actions"' in page.text


async def test_recorded_clicks_are_listed_newest_first_and_escaped(
    make_client: Make, seed_coach: Put, async_client: aredis.Redis, settings: Settings
) -> None:
    # given two clicks, one by a hostile operator name, and a forged entry with a script URL
    await seed_coach(document(7, "training", 4, "Training <b>ran</b> out of GPU memory"))
    http = await make_client(action_url_template="https://p.example/{project_id}/{target}")
    for who in ("ana", "<script>alert(1)</script>\u202e"):
        reply = await http.post(
            "/api/projects/7/coach/training/actions", json={"version": 4, "index": 0, "who": who}
        )
        assert reply.status_code == 201, reply.text
    forged = ActionRequest(
        request_id="f" * 32, who="mallory", requested_at=datetime.now(UTC), project_id=7,
        stage="training", title="t", version=1, index=0, kind="navigate", label="Go",
        params={}, url="javascript:alert(1)",
    )  # fmt: skip
    await async_client.xadd(settings.names.actions, action_fields(forged))  # type: ignore[arg-type]
    # when the page is opened
    page = (await http.get("/ui/actions")).text
    # then every request is there, newest first, with nothing executable in it
    assert page.index("mallory") < page.index("&lt;script&gt;") < page.index(">ana<")
    assert "<script>alert" not in page and "\\u202e" in page
    assert "Training &lt;b&gt;ran&lt;/b&gt;" in page
    assert 'href="https://p.example/7/somewhere"' in page
    assert 'href="javascript:' not in page
    assert page.count("<tr data-request=") == 3
