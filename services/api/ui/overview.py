"""The overview: every stream and group of the bus, per partition (``/ui``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.api.state import State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.render import page
from services.ops.status import bus_status

router = APIRouter()


@router.get("")
async def overview(
    request: Request, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """Streams, groups and consumers, as ``GET /api/status`` reports them."""
    status = await bus_status(state.redis, state.settings.names)
    return page(request, "overview.html", status=status)
