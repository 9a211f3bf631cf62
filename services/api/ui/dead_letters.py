"""The dead-letter console: the filtered listing with its live tail, one dead letter in full,
the audit log (``/ui/dead-letters``).

Every read is the JSON API's library call: `list_dead_letters` (``GET /api/dead-letters``),
`get_dead_letter` (``GET /api/dead-letters/{id}``), `read_audit`. The filter is the URL
(`dead_letter_query`); an htmx filter change gets the results section only, and pushes the URL.
The writes (redrive, purge) are `dead_letter_actions`; the live tail is `dead_letter_live`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.api.errors import not_found
from services.api.state import State
from services.api.ui import dead_letter_actions, dead_letter_live
from services.api.ui.access import Access, require_ui_read
from services.api.ui.dead_letter_query import (
    MAX_FIELD,
    SOURCES,
    STAGES,
    DeadLetterQuery,
    dead_letter_query,
)
from services.api.ui.render import page, partial
from services.ops.deadletters import get_dead_letter, list_dead_letters, read_audit
from services.ops.stream_ids import parse_dead_letter_id
from shared.error_codes import code_family

router = APIRouter()
# Fixed paths first: `/dead-letters/{entry_id}` would take "events" or "audit" for an id.
router.include_router(dead_letter_live.router)
router.include_router(dead_letter_actions.router)

#: Dead letters a page lists (newest first); older ones are a `before_id` link away.
PAGE_SIZE = 50
AUDIT_SIZE = 50
Reader = Annotated[Access, Depends(require_ui_read)]
Filter = Annotated[DeadLetterQuery, Depends(dead_letter_query)]


@router.get("/dead-letters")
async def dead_letters(
    request: Request,
    state: State,
    _: Reader,
    query: Filter,
    before_id: Annotated[str | None, Query(max_length=MAX_FIELD)] = None,
) -> Response:
    """The newest matches (older than `before_id` when paging), newest first, live at the top."""
    before_id = before_id or None
    listing = await list_dead_letters(
        state.redis, state.settings.names, **query.listing(), limit=PAGE_SIZE,
        before_id=before_id,
    )  # fmt: skip
    records = list(reversed(listing.items))
    families = sorted({code_family(code) for r in records for code in r.errors})
    context: dict[str, Any] = {
        "dlq": query,
        "listing": listing,
        "records": records,
        "paging": before_id is not None,
        "families": families,
        "stages": STAGES,
        "sources": SOURCES,
    }
    template = "dead_letters_results.html" if partial(request) else "dead_letters.html"
    return page(request, template, **context)


@router.get("/dead-letters/audit")
async def audit(request: Request, state: State, _: Reader) -> Response:
    """The newest redrives and purges (dry runs included): who, when, what, how many."""
    records = await read_audit(state.redis, state.settings.names, limit=AUDIT_SIZE)
    return page(request, "dead_letters_audit.html", records=records)


@router.get("/dead-letters/{entry_id}")
async def dead_letter(request: Request, state: State, _: Reader, entry_id: str) -> Response:
    """One dead letter in full; 422 page for a bad id, 404 page for an unknown one."""
    parse_dead_letter_id(entry_id, "entry_id")
    record = await get_dead_letter(state.redis, state.settings.names, entry_id, state.archive)
    if record is None:
        raise not_found("dead_letter", entry_id)
    original = record.original_bytes()
    text = original.decode("utf-8", "replace")  # exact bytes in the hex dump beside it
    return page(request, "dead_letter.html", record=record, original=original, original_text=text)
