"""The overview (``/ui``): every stream and group per partition, throughput, dead letters by
reason family and each service's health, updating live.

The page is four fragments (``overview_<part>.html``). What they show comes from the live hub's
status samples (`services.api.live`: one sampler per API process, whatever the number of open
pages); only before the hub's first sample does a page read the bus itself (`read_now`).
``GET /ui/overview/live`` sends every part again at each new sample as server-sent events, the
same HTML once for every page watching (`FrameCache`); ``GET /ui/overview/<part>`` renders one
part and ``GET /ui/overview/parts`` all four as out-of-band swaps (for a client without SSE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.api.fanout import Resync
from services.api.samples import StatusSample
from services.api.sse import SseEvent, sse_response
from services.api.state import ApiState, State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.overview_data import read_now
from services.api.ui.overview_model import OverviewView, Reading, overview_view
from services.api.ui.overview_samples import reading_of
from services.api.ui.render import page, render

router = APIRouter()

Part = Literal["health", "throughput", "streams", "dead"]
PARTS: Final[tuple[Part, ...]] = ("health", "throughput", "streams", "dead")
#: How the page stays current: "sse" (one event stream) or "poll" (`POLL_S`, parts route).
LIVE: Final = "sse"
POLL_S: Final = 3


async def current(state: ApiState) -> Reading:
    """The newest sample's reading; before the hub's first sample, a direct read."""
    samples = state.live.samples()
    if not samples:
        return await read_now(state)
    return reading_of(samples, state.live.sample_s, state.store_ready)


@dataclass
class FrameCache:
    """The events of the newest sample, rendered once for every page that streams them."""

    at: datetime | None = None
    events: list[SseEvent] = field(default_factory=list)

    def frames(self, request: Request, state: ApiState) -> list[SseEvent]:
        """Every part as an event, for the hub's newest sample."""
        samples = state.live.samples()
        if not samples:
            return []
        if samples[-1].at != self.at:
            view = overview_view(reading_of(samples, state.live.sample_s, state.store_ready))
            self.events = part_events(request, view)
            self.at = samples[-1].at
        return self.events


def part_events(request: Request, view: OverviewView) -> list[SseEvent]:
    """One event per part, named after it, its data the part's fragment."""
    return [
        SseEvent(part, render(request, f"overview_{part}.html", {"view": view})) for part in PARTS
    ]


def frame_cache(request: Request) -> FrameCache:
    """This app's cache (one per API process: the hub's samples are per process too)."""
    cache: FrameCache | None = getattr(request.app.state, "overview_frames", None)
    if cache is None:
        cache = request.app.state.overview_frames = FrameCache()
    return cache


@router.get("")
async def overview(
    request: Request, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """The whole page."""
    view = overview_view(await current(state))
    return page(request, "overview.html", view=view, live=LIVE, poll_s=POLL_S)


@router.get("/overview/live")
async def overview_live(
    request: Request, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """Every part again at each new status sample (server-sent events, one per part)."""
    cache = frame_cache(request)

    def frames(_: StatusSample | Resync) -> list[SseEvent]:
        # A sample or a resync alike: send the newest sample's parts (a page that fell behind
        # skips to the present, which is all a status page needs).
        return cache.frames(request, state)

    return sse_response(request, state.live.status(), frames)


@router.get("/overview/parts")
async def overview_parts(
    request: Request, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """Every part of the page, each as an out-of-band swap."""
    view = overview_view(await current(state))
    return page(request, "overview_parts.html", view=view, parts=PARTS)


@router.get("/overview/{part}")
async def overview_part(
    request: Request, part: Part, state: State, _: Annotated[Access, Depends(require_ui_read)]
) -> Response:
    """One part of the page, as a fragment."""
    view = overview_view(await current(state))
    return page(request, f"overview_{part}.html", view=view)
