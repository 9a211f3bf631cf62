"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from services.api.metrics import scrape
from services.api.models import Health, Readiness
from services.api.state import ReadAccess, State

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


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(state: State) -> JSONResponse:
    """200 when Redis and the history database both answer, 503 otherwise."""

    async def database() -> bool:
        return await (await state.history()).ping()

    redis_ok, db_ok = await asyncio.gather(
        _answers(asyncio.ensure_future(state.redis.ping())),
        _answers(asyncio.ensure_future(database())),
    )
    ready = redis_ok and db_ok
    body = Readiness(status="ready" if ready else "not_ready", redis=redis_ok, database=db_ok)
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
