"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from services.api.metrics import scrape
from services.api.models import Health, Readiness
from services.api.state import ReadAccess, State
from services.ops.status import bus_status, redis_memory

router = APIRouter(tags=["health"])
PING_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> Health:
    """The process serves requests, for the system named by `instance`."""
    return Health(status="ok", instance=request.app.state.settings.instance)


async def _answers(check: asyncio.Future[bool] | asyncio.Task[bool]) -> bool:
    try:
        return bool(await asyncio.wait_for(check, PING_TIMEOUT_S))
    except Exception:  # any failure to answer is "not ready", never a 500
        return False


async def _backlog(state: State) -> tuple[int | None, float | None]:
    """The largest lag of runbus's groups, in entries and in seconds (None: unknown)."""
    try:
        status = await asyncio.wait_for(bus_status(state.redis, state.settings.names), 2.0)
    except Exception:  # a probe never fails on it
        return None, None
    groups = [g for s in status.streams for g in s.groups if g.exists and g.expected]
    lags = [g.lag for g in groups if g.lag is not None]
    ages = [g.lag_s for g in groups if g.lag_s is not None]
    return (max(lags) if lags else None), (max(ages) if ages else None)


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(state: State) -> JSONResponse:
    """200 when Redis and the history database both answer, 503 otherwise; `redis_full` says
    when Redis is at its maxmemory (it still answers, and reads work: the API stays ready),
    `lag` and `lag_s` how far behind the furthest stage is."""

    async def database() -> bool:
        return await (await state.history()).ping()

    async def full() -> bool:
        memory = await redis_memory(state.redis)
        return memory is not None and memory.full

    redis_ok, db_ok, redis_full, behind = await asyncio.gather(
        _answers(asyncio.ensure_future(state.redis.ping())),
        _answers(asyncio.ensure_future(database())),
        _answers(asyncio.ensure_future(full())),
        _backlog(state),
    )
    ready = redis_ok and db_ok
    body = Readiness(
        status="ready" if ready else "not_ready",
        redis=redis_ok,
        database=db_ok,
        redis_full=redis_full,
        lag=behind[0],
        lag_s=behind[1],
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[ReadAccess],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(state: State) -> Response:
    """Prometheus metrics, read from Redis at scrape time (see the README, HTTP API > Metrics)."""
    body = await scrape(state.redis, state.settings, state.live.subscribers())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
