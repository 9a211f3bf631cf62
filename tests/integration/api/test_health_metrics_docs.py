"""Stories of the operational endpoints: health, readiness, metrics, documents, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from services.api.app import create_app
from shared import metrics
from shared.connections import async_redis
from shared.names import ACTIONS_GROUP
from shared.settings import Settings
from tests.conftest import free_port
from tests.integration.validator.helpers import good_event, route, xadd_raw

pytestmark = pytest.mark.integration

Make = Callable[..., Awaitable[httpx.AsyncClient]]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_healthz_and_readyz_when_everything_answers(make_client: Make) -> None:
    http = await make_client(instance_id="i-under-test")
    assert (await http.get("/healthz")).json() == {"status": "ok", "instance": "i-under-test"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready", "redis": True, "database": True, "redis_full": False,
        "lag": None, "lag_s": None,  # no stage ran: no group, no lag to tell
    }  # fmt: skip


async def test_readyz_is_503_when_redis_is_gone(make_client: Make, redis_server) -> None:  # type: ignore[no-untyped-def]
    # given an API on a private Redis that then dies
    server = redis_server()
    http = await make_client(redis_url=server.url)
    assert (await http.get("/readyz")).status_code == 200
    server.stop()
    # then it is not ready, says why, and data reads are 503 (never 500)
    ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["redis"] is False
    assert ready.json()["database"] is True
    status = await http.get("/api/status")
    assert status.status_code == 503 and status.json()["error"] == "redis_unavailable"
    # and /metrics still answers, with runbus_redis_up 0
    scrape = await http.get("/metrics")
    assert scrape.status_code == 200
    assert samples(scrape.text)[("runbus_redis_up", ())] == 0


async def test_readyz_is_503_when_the_database_is_unreachable(make_client: Make) -> None:
    # given a PostgreSQL URL where nothing listens
    http = await make_client(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    # then the API still starts, is not ready, and history reads are 503
    ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json() == {
        "status": "not_ready", "redis": True, "database": False, "redis_full": False,
        "lag": None, "lag_s": None,
    }  # fmt: skip
    runs = await http.get("/api/runs/r-1/events")
    assert runs.status_code == 503 and runs.json()["error"] == "database_unavailable"
    assert runs.headers["retry-after"] == "5"


async def test_metrics_count_the_pipeline(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given entries routed by the real validator (2 valid, 1 invalid) and 1 still waiting
    bodies = [orjson.dumps(good_event()), orjson.dumps(good_event()), b"[broken"]
    xadd_raw(sync_client, settings.names.events, bodies)
    await route(sync_client, settings, 3)
    names = settings.names
    xadd_raw(sync_client, settings.names.events, [orjson.dumps(good_event())])
    # and a persister batch reported through shared.metrics
    client = async_redis(settings)
    await metrics.record_batch(
        client, names, "persister", entries=2, seconds=0.01, counters={"persisted": 2}
    )
    await client.aclose()
    # when Prometheus scrapes
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    # then stream totals, per-reason dead letters, group lag and the histograms are there
    assert got[("runbus_events_received_total", ())] == 4
    assert got[("runbus_events_accepted_total", ())] == 2
    assert got[("runbus_dead_letters_total", ())] == 1
    reason = (("reason", "malformed_json"), ("stage", "validator"))
    assert got[("runbus_events_dead_lettered_total", reason)] == 1
    assert got[("runbus_group_lag", (("group", "validator"), ("stream", "events")))] == 1
    assert got[("runbus_group_pending", (("group", "validator"), ("stream", "events")))] == 0
    assert got[("runbus_events_persisted_total", ())] == 2
    assert got[("runbus_batch_duration_seconds_count", (("stage", "persister"),))] == 1
    assert got[("runbus_batch_entries_total", (("stage", "validator"),))] == 3


async def test_metrics_show_the_actions_stream_and_the_platforms_group(
    http: httpx.AsyncClient, sync_client: redis.Redis, settings: Settings
) -> None:
    # given two action requests, the platform's group having read one and acked none
    actions = settings.names.actions
    sync_client.xgroup_create(actions, ACTIONS_GROUP, id="0", mkstream=True)
    for n in range(2):
        sync_client.xadd(actions, {"__data__": orjson.dumps({"n": n})})
    sync_client.xreadgroup(ACTIONS_GROUP, "platform-1", {actions: ">"}, count=1)
    # when Prometheus scrapes
    got = samples((await http.get("/metrics")).text)
    # then the stream's length and the platform's lag, pending and lag in seconds are there
    group = (("group", ACTIONS_GROUP), ("stream", "actions"))
    assert got[("runbus_stream_length", (("stream", "actions"),))] == 2
    assert got[("runbus_group_lag", group)] == 1
    assert got[("runbus_group_pending", group)] == 1
    assert got[("runbus_group_consumers", group)] == 1
    assert got[("runbus_group_lag_seconds", group)] >= 0


async def test_openapi_and_asyncapi_documents(http: httpx.AsyncClient, settings: Settings) -> None:
    openapi = (await http.get("/openapi.json")).json()
    for path in ("/api/runs/{run_id}/events", "/api/projects/{project_id}/events",
                 "/api/projects/{project_id}/coach/{stage}", "/api/projects/{project_id}/coach",
                 "/api/dead-letters", "/api/status", "/api/events", "/healthz", "/readyz",
                 "/metrics", "/api/projects/{project_id}/coach/{stage}/actions",
                 "/api/actions"):  # fmt: skip
        assert path in openapi["paths"], path
    assert {"RunEvent", "PulseEvent"} <= set(openapi["components"]["schemas"])
    assert (await http.get("/docs")).status_code == 200
    asyncapi = (await http.get("/asyncapi.json")).json()
    assert asyncapi["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in asyncapi["channels"].values()}
    assert addresses == {settings.names.events, settings.names.valid, settings.names.dead,
                         settings.names.coach_changes, settings.names.actions}  # fmt: skip
    page = await http.get("/asyncapi")
    assert page.status_code == 200 and "asyncapi" in page.text.lower()


async def test_unknown_routes_and_methods_are_json(http: httpx.AsyncClient) -> None:
    missing = await http.get("/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = await http.delete("/api/status")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


async def test_an_unexpected_failure_is_a_json_500_without_a_trace(settings: Settings) -> None:
    # given an app with a route that fails in an unforeseen way
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/boom")
    # then the client gets a JSON 500 that reveals nothing
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal error"}
    assert "secret" not in response.text
