"""Property: no user input makes the API answer 500 (arbitrary paths, queries and bodies)."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

TEMPLATES = (
    "/api/runs/{}/events",
    "/api/projects/{}/events",
    "/api/projects/{}/coach",
    "/api/projects/1/coach/{}",
    "/api/projects/{}/coach/training",
    "/api/dead-letters/{}",
)
PARAMS = ("children", "cursor", "limit", "stage", "severity", "reason", "event_type", "since",
          "until", "after_id", "before_id")  # fmt: skip
segments = st.text(min_size=1, max_size=40).map(lambda t: quote(t, safe=""))
queries = st.dictionaries(
    st.sampled_from(PARAMS), st.text(max_size=30) | st.integers().map(str), max_size=4
)
bodies = st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(template=st.sampled_from(TEMPLATES), segment=segments, query=queries)
async def test_no_read_is_a_500(
    http: httpx.AsyncClient, template: str, segment: str, query: dict[str, str]
) -> None:
    response = await http.get(template.format(segment), params=query)
    assert response.status_code < 500, (response.status_code, response.text)
    assert "error" in response.json() or response.status_code == 200


@FUZZ
@given(body=bodies)
async def test_no_post_is_a_500(http: httpx.AsyncClient, body: object) -> None:
    if isinstance(body, bytes):
        response = await http.post("/api/events", content=body)
    else:
        response = await http.post("/api/events", json=body)
    assert response.status_code in (202, 422), response.text
    redrive = await http.post("/api/dead-letters/redrive", content=str(body).encode())
    assert redrive.status_code < 500, redrive.text
