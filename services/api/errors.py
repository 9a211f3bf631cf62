"""JSON errors everywhere: every failure is ``{"error": <code>, "message": <text>, ...}``.

User input never yields a 500: bad parameters are 422, unknown things 404, an unreachable Redis
or database 503, a full Redis (``OOM`` at its maxmemory) 503 ``redis_full`` with Retry-After.
A catch-all turns any other exception into a JSON 500 without a stack trace (the trace goes to
the log). Under the dashboard's paths (``/ui``) the same errors are HTML
pages instead, from the renderer the dashboard registers (`ErrorPage`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.history.base import StoreUnavailable
from services.history.reads import NotFound
from shared.connections import is_redis_full
from shared.errors import InputError
from shared.logging import get_logger

log = get_logger("runbus.api")


class ApiError(Exception):
    """An error with its HTTP status, stable code, message and optional extra body fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra or {}


def not_found(kind: str, ident: object) -> ApiError:
    """404 for an unknown project, run, stage or dead letter."""
    return ApiError(404, f"{kind}_not_found", f"no {kind} {ident!s}", extra={kind: str(ident)})


def invalid(message: str) -> ApiError:
    """422 for a parameter the route itself found invalid."""
    return ApiError(422, "invalid_parameter", message)


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of an error."""
    return {"error": code, "message": message, **extra}


def json_bytes(body: dict[str, Any]) -> bytes:
    """An error body encoded as JSON."""
    return orjson.dumps(body)


#: Renders an error as an HTML page: (request, status, body, headers) -> response.
ErrorPage = Callable[[Request, int, dict[str, Any], dict[str, str] | None], Response]
#: The dashboard's paths: their errors are pages, not JSON.
HTML_PREFIX = "/ui"


def _respond(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    path = request.url.path
    if page is not None and (path == HTML_PREFIX or path.startswith(HTML_PREFIX + "/")):
        return page(request, status, body, headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _respond(
        request, exc.status, error_body(exc.code, exc.message, **exc.extra), exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in exc.errors()
    ]
    text = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
    return _respond(
        request, 422, error_body("invalid_request", text or "invalid request", errors=problems)
    )


#: Codes of the HTTP errors the framework raises itself. FastAPI's only 400 is a body it cannot
#: decode (not UTF-8, say): `invalid_body`.
_HTTP_CODES = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return _respond(request, exc.status_code, error_body(code, str(exc.detail)), headers)


async def _invalid_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InputError)
    extra = {"field": exc.field} if exc.field else {}
    return _respond(request, 422, error_body(exc.code, exc.message, **extra))


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    return _respond(request, 404, error_body(exc.code, str(exc), **{exc.kind: str(exc.ident)}))


async def _unavailable(request: Request, exc: Exception) -> Response:
    what = "database" if isinstance(exc, StoreUnavailable) else "redis"
    log.warning("dependency_unavailable", path=request.url.path, dependency=what, error=str(exc))
    body = error_body(f"{what}_unavailable", f"the {what} is not reachable; retry later")
    return _respond(request, 503, body, {"Retry-After": "5"})


#: How long a client should wait before retrying a write that a full Redis refused: about the
#: stages' trim interval, after which their moves have freed memory.
FULL_RETRY_AFTER_S = 5


async def _redis_refused(request: Request, exc: Exception) -> Response:
    """Redis answered with an error: 503 when it is full (``OOM``: at its maxmemory, nothing
    was written), else an internal error."""
    if not is_redis_full(exc):
        return await _internal(request, exc)
    log.warning("redis_full", path=request.url.path, error=str(exc))
    body = error_body(
        "redis_full",
        "Redis is at its maxmemory and refuses new entries until the stages free memory; "
        "nothing was written: retry later",
    )
    return _respond(request, 503, body, {"Retry-After": str(FULL_RETRY_AFTER_S)})


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, error=repr(exc), exc_info=exc)
    return _respond(request, 500, error_body("internal_error", "internal error"))


def install(app: FastAPI) -> None:
    """Register every error handler on the app."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(InputError, _invalid_input)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(StoreUnavailable, _unavailable)
    app.add_exception_handler(RedisConnectionError, _unavailable)
    app.add_exception_handler(RedisTimeoutError, _unavailable)
    app.add_exception_handler(ResponseError, _redis_refused)
    app.add_exception_handler(Exception, _internal)
