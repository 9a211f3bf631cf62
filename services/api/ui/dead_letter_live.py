"""The console's live tail: ``/ui/dead-letters/events?<filter>&after=<id>``, server-sent events.

Each page holds one subscription to the process's one dead-letter follower (`LiveHub`): no
page reads the streams itself while it waits. Every record is checked here against the page's
filter (`DeadLetterQuery.admits`) and sent as a rendered table row (event ``dead_letter``,
newest first, its id the SSE id). Nothing falls between the page's render and the stream: the
stream starts with a catch-up, the listing's own library call (`list_dead_letters`) from the
page's newest id (``after``, or ``Last-Event-ID`` when the browser reconnects), and the same
catch-up answers a `Resync` (this page lagged, or the hub lost Redis for a while). Records the
catch-up already covered are skipped by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.api.fanout import Resync
from services.api.sse import SseEvent, sse_response
from services.api.state import ApiState, State
from services.api.ui.access import Access, require_ui_read
from services.api.ui.dead_letter_query import MAX_FIELD, DeadLetterQuery, dead_letter_query
from services.api.ui.render import render
from services.ops.deadletters import list_dead_letters
from services.ops.logic import now_utc
from services.ops.models import DeadLetterRecord
from services.ops.stream_ids import FIRST_ID, parse_dead_letter_id

router = APIRouter()

#: The SSE event the page's tail swaps in (``sse-swap``).
EVENT: Final = "dead_letter"
#: A catch-up reads at most this many pages of `CATCH_UP_PAGE`: the page shows the newest.
CATCH_UP_PAGE: Final = 200
CATCH_UP_PAGES: Final = 5
#: How long a new stream waits for the hub's follower to have its position (s).
LISTEN_TIMEOUT_S: Final = 5.0


def _key(entry_id: str) -> tuple[int, int, int]:
    return parse_dead_letter_id(entry_id).key


@dataclass
class _Tail:
    """One page's tail: its filter, and the newest dead-letter id it has looked at."""

    request: Request
    state: ApiState
    query: DeadLetterQuery
    cursor: str | None

    def rows(self, records: list[DeadLetterRecord]) -> SseEvent:
        """One event of rendered rows, newest first (the page inserts them at the top)."""
        html = render(self.request, "dead_letters_rows.html", {"records": records})
        return SseEvent(EVENT, html, id=records[0].id)

    async def catch_up(self) -> SseEvent | None:
        """Every match after the cursor (the listing's library call), as one event."""
        found: list[DeadLetterRecord] = []
        for _ in range(CATCH_UP_PAGES):
            listing = await list_dead_letters(
                self.state.redis, self.state.settings.names, **self.query.listing(),
                limit=CATCH_UP_PAGE, after_id=self.cursor or FIRST_ID,
            )  # fmt: skip
            found += listing.items
            self.cursor = listing.next_after or self.cursor
            if len(listing.items) < CATCH_UP_PAGE:
                break
        return self.rows(found[::-1]) if found else None

    async def __call__(self, item: DeadLetterRecord | Resync) -> SseEvent | None:
        """The event for one item of the subscription (None: not for this page)."""
        if isinstance(item, Resync):
            return await self.catch_up()
        if self.cursor is not None and _key(item.id) <= _key(self.cursor):
            return None  # the catch-up sent it (or looked at it) already
        self.cursor = item.id
        if not self.query.admits(item, self.state.settings.names, now_utc()):
            return None
        return self.rows([item])


@router.get("/dead-letters/events")
async def events(
    request: Request,
    state: State,
    _: Annotated[Access, Depends(require_ui_read)],
    query: Annotated[DeadLetterQuery, Depends(dead_letter_query)],
    after: Annotated[str | None, Query(max_length=MAX_FIELD)] = None,
) -> Response:
    """The live tail of `query` after dead letter `after` (rendered rows, as SSE)."""
    cursor = request.headers.get("last-event-id") or after or None
    if cursor is not None:
        parse_dead_letter_id(cursor, "after")  # a bad id is a 422 before any stream starts
    subscription = state.live.dead_letters()
    try:
        await state.live.listening("dead_letters", LISTEN_TIMEOUT_S)
    except BaseException:  # the client left while waiting: the stream that closes it never ran
        subscription.close()
        raise
    # The first item is a catch-up: what arrived between the page's render and the follower.
    subscription.offer(Resync("reconnected"))
    return sse_response(request, subscription, _Tail(request, state, query, cursor))
