"""``python -m tests.integration.api.sse_server``: `serve_api` with one event-stream route more.

What ``runbus run api`` runs (`services.api.app.serve_api`, settings from the environment,
SIGTERM handling), plus ``GET /test/live``: the status samples as events, through `sse_response`
and the app's live hub. The shutdown test holds that stream open and sends SIGTERM. (The
dashboard's own routes come with its pages; this one keeps the test independent of them.)
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from starlette.responses import StreamingResponse

from services.api import app as api_app
from services.api.fanout import Resync
from services.api.samples import StatusSample
from services.api.sse import SseEvent, sse_response
from shared.settings import Settings


def render(item: StatusSample | Resync) -> SseEvent:
    """One event per sample: its time."""
    if isinstance(item, Resync):
        return SseEvent("resync", item.reason)
    return SseEvent("status", item.at.isoformat())


def with_stream(settings: Settings) -> FastAPI:
    """The API's app with ``GET /test/live``."""
    app = ORIGINAL(settings)

    @app.get("/test/live")
    async def live(request: Request) -> StreamingResponse:
        return sse_response(request, request.app.state.api.live.status(), render)

    return app


ORIGINAL = api_app.create_app

if __name__ == "__main__":
    api_app.create_app = with_stream  # what build_server calls
    asyncio.run(api_app.serve_api(Settings()))
