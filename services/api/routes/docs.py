"""The API's own documentation pages: Swagger UI at ``/docs`` and the AsyncAPI page.

Both pages load only assets the API serves itself (``services.api.static``), so they render on
a machine without internet. The vendored files are served under their versioned URLs with a
one-year immutable cache.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from services.api.asyncapi import asyncapi_document, asyncapi_html
from services.api.errors import not_found
from services.api.state import app_settings
from services.api.static import URL_PREFIX, manifest

router = APIRouter(tags=["docs"])

#: Every vendored URL embeds its package version, so a response never goes stale.
IMMUTABLE = "public, max-age=31536000, immutable"
SWAGGER = "swagger-ui"


@router.get("/asyncapi.json")
async def asyncapi_json(request: Request) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of runbus's streams and consumer groups."""
    return asyncapi_document(app_settings(request))


@router.get("/asyncapi", response_class=HTMLResponse)
async def asyncapi_page(request: Request) -> HTMLResponse:
    """The AsyncAPI document rendered as a page."""
    return HTMLResponse(asyncapi_html(app_settings(request)))


@router.get("/docs", include_in_schema=False)
async def swagger_page(request: Request) -> HTMLResponse:
    """Swagger UI on the OpenAPI document, from the vendored swagger-ui-dist."""
    assets = manifest()
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=assets.url(SWAGGER, "swagger-ui-bundle.js"),
        swagger_css_url=assets.url(SWAGGER, "swagger-ui.css"),
        swagger_favicon_url=assets.url(SWAGGER, "favicon-32x32.png"),
        oauth2_redirect_url=None,
        # No call to the public validator service (its badge is off in this layout anyway).
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(URL_PREFIX + "/{asset:path}", include_in_schema=False)
async def vendored_asset(asset: str) -> FileResponse:
    """A vendored file, named by its path under the vendor folder (only manifest entries)."""
    path = manifest().files().get(asset)
    if path is None:
        raise not_found("asset", asset)
    return FileResponse(path, headers={"Cache-Control": IMMUTABLE})
