"""Server-sent events: `sse_response` streams what a subscription yields as ``text/event-stream``.

Each item is rendered into an `SseEvent` (or none, to skip it), framed as the HTML standard's
event-stream format: ``event: <name>``, an optional ``id:``, then one ``data:`` line per line of
the data (a CR, LF or CRLF in the data starts a new ``data:`` line; the browser joins them with
LF), then a blank line. htmx's SSE extension swaps an event's data into the element whose
``sse-swap`` names the event, so the page helpers send HTML fragments as data.

A comment line (``: keep-alive``) goes out when nothing was sent for `KEEPALIVE_S`, so proxies
keep the connection and a vanished client is noticed. The stream ends when the client
disconnects (Starlette cancels it) or the subscription ends: `LiveHub.shutdown` ends every
subscription when the server stops, so uvicorn, which waits for open responses before its
lifespan shutdown, is never held up by an open page. ``X-Accel-Buffering: no`` keeps nginx from
buffering the stream; ``Cache-Control: no-cache`` keeps caches out of it.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse

from services.api.fanout import Resync, Subscription

T = TypeVar("T")

#: Longest silence before a keep-alive comment (s).
KEEPALIVE_S: Final = 15.0
#: What the browser waits before reconnecting after the stream ended (ms): the ``retry:`` field.
RETRY_MS: Final = 3000
MEDIA_TYPE: Final = "text/event-stream"
HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE: Final = b": keep-alive\n\n"
_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event."""

    event: str
    """Its name: what ``sse-swap`` (htmx) or ``addEventListener`` (EventSource) listens for."""
    data: str
    """Its data, any number of lines (an HTML fragment for htmx)."""
    id: str | None = None
    """Sets the browser's last event id (sent back as ``Last-Event-ID`` on reconnect)."""


#: What turns one item into events: an event, several, or None (nothing to send); may be async.
Rendered = SseEvent | list[SseEvent] | None
Render = Callable[[T], Rendered | Awaitable[Rendered]]


def _field(name: str, value: str) -> str:
    if _LINE_BREAK.search(value) or "\0" in value:
        raise ValueError(f"an SSE {name} cannot hold a line break or NUL: {value!r}")
    return f"{name}: {value}\n"


def frame(event: SseEvent) -> bytes:
    """The event-stream bytes of one event."""
    lines = [_field("event", event.event)]
    if event.id is not None:
        lines.append(_field("id", event.id))
    lines += [f"data: {line}\n" for line in _LINE_BREAK.split(event.data)]
    return ("".join(lines) + "\n").encode()


async def _render(render: Render[T], item: T) -> list[SseEvent]:
    rendered = render(item)
    if inspect.isawaitable(rendered):
        rendered = await rendered
    if rendered is None:
        return []
    return rendered if isinstance(rendered, list) else [rendered]


async def event_stream(
    subscription: Subscription[T],
    render: Render[T | Resync],
    keepalive_s: float = KEEPALIVE_S,
    opening: Sequence[SseEvent] = (),
) -> AsyncGenerator[bytes, None]:
    """The body: the ``retry:`` field and the `opening` events, then each item's events,
    keep-alives in between.

    Closes the subscription however it ends (client gone, subscription closed, error).
    """
    try:
        yield f"retry: {RETRY_MS}\n\n".encode() + b"".join(frame(e) for e in opening)
        items = aiter(subscription)
        while True:
            try:
                item = await asyncio.wait_for(anext(items), keepalive_s)
            except TimeoutError:
                yield KEEPALIVE
                continue
            except StopAsyncIteration:
                return
            chunk = b"".join(frame(e) for e in await _render(render, item))
            if chunk:
                yield chunk
    finally:
        subscription.close()


def sse_response(
    request: Request,
    subscription: Subscription[T],
    render: Render[T | Resync],
    *,
    keepalive_s: float = KEEPALIVE_S,
    opening: Sequence[SseEvent] = (),
) -> StreamingResponse:
    """A ``text/event-stream`` response of what `subscription` yields, rendered by `render`
    (which also gets the `Resync` markers: send the page what makes it fetch again).

    `opening` goes first: a page that reconnects (the server restarted, the network dropped)
    may have missed changes, and an opening "fetch again" event covers the gap.

    `request` is the one being answered: the stream stops when its client disconnects.
    """
    del request  # Starlette's StreamingResponse listens for the disconnect on its receive
    return StreamingResponse(
        event_stream(subscription, render, keepalive_s, opening),
        media_type=MEDIA_TYPE,
        headers=HEADERS,
    )
