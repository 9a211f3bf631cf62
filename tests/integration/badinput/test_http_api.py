"""Bad input over HTTP: the API (`create_app`) on the real Redis, in process.

Story: clients post anything to ``POST /api/events`` (the corpus, generated entries, random
bytes, odd content types) and send hostile path and query parameters to the read routes.
Never a 500, never a stack trace; a rejected event is a 422 carrying documented codes (and
nothing is published); an accepted one is a 202 and is on the incoming stream verbatim; a
body over the API's limit is a 413, also when it is streamed without a length.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import httpx
import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr

from services.api.app import BODY_LIMIT_FACTOR, create_app
from shared.settings import Settings
from shared.wire import DATA_FIELD
from tests.integration.api.helpers import started_app
from tests.integration.badinput.conftest import rows
from tests.unit.badinput.checks import check_codes
from tests.unit.badinput.corpus import NASTY, corpus, event
from tests.unit.badinput.mutate import mutants
from tests.unit.badinput.strategies import entries, examples, recipes

pytestmark = pytest.mark.integration
TOKEN = "api-fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(settings: Settings, sync_client: redis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The API app with its lifespan run, behind an in-process transport (an unhandled error
    shows up as the response a client gets)."""
    tuned = settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    async with started_app(tuned) as (_, client):
        yield client


class Posted:
    """What the API said about one body, checked against the contract."""

    def __init__(self, response: httpx.Response, body: bytes) -> None:
        self.response, self.body = response, body

    def check(self, client: redis.Redis, stream: str) -> None:
        status, text = self.response.status_code, self.response.text
        assert status in (202, 413, 422), f"{status}: {text[:300]}"
        assert "Traceback" not in text and 'File "' not in text
        doc = self.response.json()
        if status == 422:
            check_codes(doc["errors"])
        elif status == 202:
            fields = rows(client, stream, min=doc["entry_id"], max=doc["entry_id"])[0][1]
            sent, stored = orjson.loads(self.body), orjson.loads(fields[DATA_FIELD])
            for key, value in sent.items():
                if key in ("ts", "created_at") or (key == "event_id" and value is None):
                    continue  # times are normalized to UTC; a missing id is generated
                assert stored[key] == value, f"{key} changed on its way"


async def post(api: httpx.AsyncClient, body: bytes, **headers: str) -> Posted:
    response = await api.post("/api/events", content=body, headers={**AUTH, **headers})
    return Posted(response, body)


async def test_corpus_bodies_never_give_a_500(
    api: httpx.AsyncClient, settings: Settings, sync_client: redis.Redis
) -> None:
    # Given every corpus body, posted as is
    bodies = [c.fields[DATA_FIELD] for c in corpus() if DATA_FIELD in c.fields]
    results = [await post(api, body) for body in bodies]
    # Then each answer follows the contract, and only accepted events were published
    for result in results:
        result.check(sync_client, settings.names.events)
    accepted = sum(r.response.status_code == 202 for r in results)
    assert 0 < accepted < len(results)
    assert sync_client.xlen(settings.names.events) == accepted


async def test_mutated_and_random_bodies_never_give_a_500(
    api: httpx.AsyncClient, settings: Settings, sync_client: redis.Redis
) -> None:
    # Given mutated corpus entries and random bytes, with odd content types
    kinds = ["application/json", "text/plain", "application/octet-stream", "", "x/\x7f;;"]
    bodies = [f.get(DATA_FIELD, b"") for f in mutants(7, examples(300, 5_000))]
    for n, body in enumerate(bodies):
        result = await post(api, body, **{"Content-Type": kinds[n % len(kinds)]})
        # Then each answer follows the contract
        result.check(sync_client, settings.names.events)


class BlockingApi:
    """The app behind an in-process client, driven from synchronous code (hypothesis)."""

    def __init__(self, settings: Settings) -> None:
        self.runner = asyncio.Runner()
        self.stack = contextlib.AsyncExitStack()
        app = create_app(settings.model_copy(update={"api_token": SecretStr(TOKEN)}))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.runner.run(self.stack.enter_async_context(app.router.lifespan_context(app)))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://api")

    def post(self, body: bytes) -> httpx.Response:
        return self.runner.run(self.client.post("/api/events", content=body, headers=AUTH))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.run(self.stack.aclose())
        self.runner.close()


@pytest.fixture
def sync_api(settings: Settings, sync_client: redis.Redis) -> Iterator[BlockingApi]:
    """The same app, for the synchronous hypothesis test."""
    api = BlockingApi(settings)
    yield api
    api.close()


@settings(
    max_examples=examples(60, 3_000),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fields=entries(), recipe=recipes)
def test_hypothesis_bodies_never_give_a_500(
    sync_api: BlockingApi,
    settings: Settings,
    sync_client: redis.Redis,
    fields: dict[bytes, bytes],
    recipe: tuple[int, list[str]],
) -> None:
    bodies = [fields, *mutants(recipe[0], 5, recipe[1])]
    for body in (f.get(DATA_FIELD, b"") for f in bodies):
        response = sync_api.post(body)
        Posted(response, body).check(sync_client, settings.names.events)


async def test_oversized_bodies_get_413_even_when_streamed(
    api: httpx.AsyncClient, settings: Settings, sync_client: redis.Redis
) -> None:
    limit = settings.max_event_bytes * BODY_LIMIT_FACTOR
    huge = orjson.dumps(event(payload={"x": "y" * limit}))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 8192):
            yield huge[start : start + 8192]

    # A declared length over the limit, and the same body streamed without a length
    declared = await api.post("/api/events", content=huge, headers=AUTH)
    streamed = await api.post("/api/events", content=chunks(), headers=AUTH)
    # Between the event limit and the body limit: a 422 with the size code
    between = orjson.dumps(event(payload={"x": "y" * settings.max_event_bytes}))
    middle = await api.post("/api/events", content=between, headers=AUTH)
    assert declared.status_code == 413 and streamed.status_code == 413
    assert declared.json()["error"] == "body_too_large"
    assert middle.status_code == 422 and "payload_too_large" in middle.json()["errors"]
    assert sync_client.xlen(settings.names.events) == 0


async def test_hostile_path_and_query_parameters_never_give_a_500(api: httpx.AsyncClient) -> None:
    paths = []
    for text in (*NASTY, "%00", "%ZZ", "..%2F..%2F", "9" * 400, "-1", "1e9"):
        q = quote(text, safe="")
        paths += [
            f"/api/runs/{q}/events",
            f"/api/runs/{q}/events?cursor={q}&limit={q}&children={q}",
            f"/api/projects/{q}/events?since={q}&until={q}&stage={q}&reason={q}",
            f"/api/projects/7/events?severity={q}&event_type={q}&cursor={q}",
            f"/api/projects/{q}/coach",
            f"/api/projects/7/coach/{q}",
            f"/api/dead-letters?reason={q}&since={q}&limit={q}&after={q}&before={q}",
            f"/api/dead-letters/{q}",
        ]
    for path in paths:
        response = await api.get(path, headers=AUTH)
        assert response.status_code < 500, f"{path}: {response.status_code} {response.text[:200]}"
        assert "Traceback" not in response.text
