"""The FastAPI app (`create_app`) and its server (`serve_api`, what `runbus run api` runs).

The lifespan opens one Redis client, the history store and the live hub and closes them on
shutdown (the server ends the hub's event streams first: `end_live_streams`). Every
route lives in `services.api.routes`, by concern; every error is JSON (`services.api.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api import errors
from services.api.fastpath import CoachFastPath
from services.api.routes import (
    actions,
    coach,
    dead_letters,
    docs,
    events,
    health,
    history,
    search,
)
from services.api.state import ApiState
from services.api.ui import routes as dashboard
from shared import __version__
from shared.logging import get_logger
from shared.settings import Settings
from shared.signals import install_stop_signals

log = get_logger("runbus.api")

#: A request body may be this many times ``max_event_bytes`` (JSON escaping, a redrive list).
BODY_LIMIT_FACTOR = 4

DESCRIPTION = """Run history, Coach Mode suggestions (and requests for their actions), dead
letters and bus status of runbus, plus HTTP ingestion. The streams themselves are described by
the AsyncAPI document at [/asyncapi](/asyncapi). Errors are JSON:
`{"error": <code>, "message": <text>}`."""


class BodyLimit:
    """Refuse request bodies larger than `limit` bytes with a JSON 413 (streamed bodies too)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = errors.json_bytes(
            errors.error_body("body_too_large", f"request body over {self.limit} bytes")
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    """Raised inside the app when a streamed body passes the limit."""


def _with_event_schemas(app: FastAPI) -> None:
    """Add the RunEvent / PulseEvent schemas that ``POST /api/events`` references by hand."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = default()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in events.BODY_MODELS:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings) -> FastAPI:
    """The runbus HTTP API for these settings (resources open in the lifespan)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api = await ApiState.open(settings)
        # Everything allocated at start-up is long-lived: moving it out of the cyclic GC's
        # generations keeps full collections (the p99 of a 1000-event run read) short.
        gc.freeze()
        log.info("api_started", namespace=settings.namespace)
        try:
            yield
        finally:
            await app.state.api.close()

    # /docs is our own route (routes.docs: assets served by the app, offline); no ReDoc page.
    app = FastAPI(
        title="runbus",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # A trailing slash is a JSON 404 like any unknown path, not an empty-bodied 307.
        redirect_slashes=False,
    )
    app.state.settings = settings
    errors.install(app)
    for module in (history, coach, actions, events, dead_letters, search, health, docs):
        app.include_router(module.router)
    app.include_router(dead_letters.write_router)
    app.include_router(actions.write_router)
    dashboard.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_event_bytes * BODY_LIMIT_FACTOR)
    app.add_middleware(CoachFastPath, api=app)
    _with_event_schemas(app)
    return app


class _Server(uvicorn.Server):
    """uvicorn without its signal capture: `serve_api` owns SIGINT/SIGTERM (and exits 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the live streams first: uvicorn waits for open responses before the lifespan
        shutdown, and an event stream never ends by itself."""
        end_live_streams(self.config.app)
        await super().shutdown(sockets)


def end_live_streams(app: Any) -> None:
    """End every live subscription of a started app (its event streams finish)."""
    state: ApiState | None = getattr(getattr(app, "state", None), "api", None)
    if state is not None:
        state.live.shutdown()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that other API workers may bind too (SO_REUSEPORT:
    the kernel spreads new connections over them). `port_taken`, checked by the supervisor
    first, refuses a port someone else holds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP by name, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it a response's second write waits for the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


#: Pending connections a listening socket holds (uvicorn's default).
LISTEN_BACKLOG = 2048


def build_server(settings: Settings) -> uvicorn.Server:
    """A uvicorn server for the app on ``api_host:api_port``."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
    )
    return _Server(config)


def _worker_sockets(settings: Settings) -> list[socket.socket] | None:
    """One of several workers binds its own SO_REUSEPORT socket; a lone API lets uvicorn bind."""
    if settings.api_workers == 1:
        return None
    try:
        return [reuse_port_socket(settings.api_host, settings.api_port)]
    except OSError as exc:
        raise SystemExit(
            f"the API could not start on {settings.api_host}:{settings.api_port}: {exc}"
        ) from None


async def serve_api(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM when `stop` is None), then drain requests."""
    server = build_server(settings)
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)

    async def watch() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        await server.serve(sockets=_worker_sockets(settings))
    finally:
        watcher.cancel()
    if not server.started:
        raise SystemExit(f"the API could not start on {settings.api_host}:{settings.api_port}")
