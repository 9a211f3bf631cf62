"""The dashboard's router: every page module's routes under ``/ui``, its assets, its errors.

A page module holds thin handlers only: what it shows comes from the library calls the JSON API
uses too. Adding a page is a module with a ``router`` and its entry in `PAGES`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response

from services.api.errors import not_found
from services.api.ui import (
    actions,
    dead_letters,
    overview,
    project,
    project_actions,
    run,
    search,
    session,
)
from services.api.ui.access import SignInFirst
from services.api.ui.assets import URL_PREFIX, lookup
from services.api.ui.render import SECURITY_HEADERS, page

PREFIX = "/ui"
#: Every page module, in navigation order.
PAGES = (overview, project, project_actions, dead_letters, actions, run, search, session)
IMMUTABLE = "public, max-age=31536000, immutable"

assets_router = APIRouter()


@assets_router.get(URL_PREFIX + "/{digest}/{name}")
async def own_asset(digest: str, name: str) -> FileResponse:
    """A file of the dashboard's ``static/``, under the hash of its bytes."""
    path = lookup(digest, name)
    if path is None:
        raise not_found("asset", name)
    return FileResponse(
        path, headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    )


def error_page(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None
) -> Response:
    """An error under ``/ui`` as a page (a fragment for htmx: the page shows it as a notice)."""
    fragment = request.headers.get("hx-request") == "true"
    template = "error_fragment.html" if fragment else "error.html"
    response = page(request, template, status, error=body)
    response.headers.update(headers or {})
    response.headers.update(SECURITY_HEADERS)
    return response


def install(app: FastAPI) -> None:
    """Mount the dashboard on the API app."""
    for module in PAGES:
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
    app.include_router(assets_router, include_in_schema=False)
    app.state.error_page = error_page
    app.add_exception_handler(SignInFirst, session.sign_in_redirect)
