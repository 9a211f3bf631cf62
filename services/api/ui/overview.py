"""The overview (``/ui``): every stream and group per partition, throughput, dead letters by
reason family and each service's health, updating live.

The page is four fragments (``overview_<part>.html``); ``GET /ui/overview/<part>`` renders one
of them alone, ``GET /ui/overview/parts`` all four as out-of-band swaps: what the page polls
to stay current, one read of the bus per poll.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.api.state import State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.overview_data import read_now
from services.api.ui.overview_model import overview_view
from services.api.ui.render import page

router = APIRouter()

Part = Literal["health", "throughput", "streams", "dead"]
PARTS: Final[tuple[Part, ...]] = ("health", "throughput", "streams", "dead")
#: How the page stays current: "poll" (it fetches every part every `POLL_S`).
LIVE: Final = "poll"
POLL_S: Final = 3


@router.get("")
async def overview(
    request: Request, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """The whole page."""
    view = overview_view(await read_now(state))
    return page(request, "overview.html", view=view, live=LIVE, poll_s=POLL_S)


@router.get("/overview/parts")
async def overview_parts(
    request: Request, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """Every part of the page, each as an out-of-band swap (one read for all four)."""
    view = overview_view(await read_now(state))
    return page(request, "overview_parts.html", view=view, parts=PARTS)


@router.get("/overview/{part}")
async def overview_part(
    request: Request, part: Part, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """One part of the page, as a fragment."""
    view = overview_view(await read_now(state))
    return page(request, f"overview_{part}.html", view=view)
