"""The AsyncAPI document of the streams (the OpenAPI one is FastAPI's own ``/docs``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.api.asyncapi import asyncapi_document, asyncapi_html
from services.api.state import app_settings

router = APIRouter(tags=["docs"])


@router.get("/asyncapi.json")
async def asyncapi_json(request: Request) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of runbus's streams and consumer groups."""
    return asyncapi_document(app_settings(request))


@router.get("/asyncapi", response_class=HTMLResponse)
async def asyncapi_page(request: Request) -> HTMLResponse:
    """The AsyncAPI document rendered as a page."""
    return HTMLResponse(asyncapi_html(app_settings(request)))
