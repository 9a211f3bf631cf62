"""The console's writes: redrive and purge of a selection or of the current filter, each in two
steps (a preview, then a confirmation carrying what the preview showed).

Every step is a signed-in write (`require_ui_write`: session, CSRF token, own origin; the
operator in the audit record is the session's name). The filter is the library's
(`redrive_filter` with its "all" guard, `selection_filter`; the purge guard `check_purge`), so
the page can refuse nothing the CLI accepts and accept nothing it refuses.

- The redrive preview is `redrive(..., dry_run=True)` on the selection `match_dead_letters`
  finds (the dry run writes its audit record, as the CLI's does); a purge has no dry run, so
  its preview is the selection alone. Either shows how many and which ids.
- The confirmation acts on exactly the previewed ids (a dead letter that arrived since is not
  swept in; one that went meanwhile counts as gone) unless there were more than `MAX_CARRIED`:
  then it applies the filter again and says so. A redrive moves each dead letter back to its
  own partition's incoming stream, as the library does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from services.api.errors import invalid
from services.api.state import State
from services.api.ui.access import Access, require_ui_write
from services.api.ui.dead_letter_query import MAX_FIELD, DeadLetterQuery, dead_letter_query
from services.api.ui.render import page, partial
from services.ops.deadletters import check_purge, match_dead_letters, purge, redrive
from services.ops.filters import redrive_filter, selection_filter
from services.ops.models import DeadLetterFilter

router = APIRouter()

#: Ids a confirmation form carries at most (Starlette parses at most 1000 form fields).
MAX_CARRIED: Final = 500
#: Ids a preview lists by name.
SHOWN: Final = 100

Scope = Literal["selected", "filter"]
Writer = Annotated[Access, Depends(require_ui_write)]
Many = Annotated[list[Annotated[str, Form(max_length=MAX_FIELD)]], Form()]
One = Annotated[str, Form(max_length=MAX_FIELD)]


@dataclass(frozen=True, slots=True)
class ActionForm:
    """What a redrive or purge form posts: the scope, the selected ids, the page's filter."""

    scope: Scope
    ids: tuple[str, ...]
    query: DeadLetterQuery
    everything: bool
    #: The confirmation's ids: what the preview showed (None: apply the filter again).
    carried: tuple[str, ...] | None = None
    #: A redrive of the filter takes the archived dead letters too ("and the archived ones").
    archived: bool = False

    def redrive_filter(self) -> DeadLetterFilter:
        """The redrive's filter: the selection's ids, or the page's filter (the "all" guard)."""
        if self.scope == "selected":
            return redrive_filter(ids=self.ids)
        q = self.query
        return redrive_filter(
            reasons=q.reasons, stages=q.stages, sources=q.sources, since=q.since_td,
            before=q.before_td, everything=self.everything, archived=self.archived,
        )  # fmt: skip

    def purge_filter(self) -> DeadLetterFilter:
        """The purge's filter (the purge guard: an age bound or ids)."""
        q = self.query
        if self.scope == "selected":
            flt = selection_filter(ids=self.ids)
        else:
            flt = selection_filter(
                reasons=q.reasons, stages=q.stages, sources=q.sources, since=q.since_td,
                before=q.before_td,
            )  # fmt: skip
        try:
            check_purge(flt)
        except ValueError as exc:
            raise invalid(str(exc)) from exc
        return flt


async def action_form(
    scope: Annotated[Scope, Form()],
    id: Many = [],  # noqa: B006 - FastAPI copies defaults per request
    family: Many = [],  # noqa: B006
    code: Many = [],  # noqa: B006
    stage: Many = [],  # noqa: B006
    source: Many = [],  # noqa: B006
    since: One = "",
    before: One = "",
    all: One = "",
    carried: Many = [],  # noqa: B006
    refilter: One = "",
    archived: One = "",
) -> ActionForm:
    """The posted form (a dependency), its filter checked like the page's URL."""
    if len(id) > MAX_CARRIED or len(carried) > MAX_CARRIED:
        raise invalid(f"select at most {MAX_CARRIED} dead letters at once, or use the filter")
    query = dead_letter_query(family, code, stage, source, since, before, None)
    ids = tuple(i.strip() for i in id if i.strip())
    kept = None if refilter else tuple(carried)
    return ActionForm(scope, ids, query, all == "1", kept, archived == "1")


Posted = Annotated[ActionForm, Depends(action_form)]


def _answer(request: Request, **context: Any) -> Response:
    """The step's panel (htmx), or a page holding it (a plain form post)."""
    template = "dead_letters_action.html" if partial(request) else "dead_letters_action_page.html"
    return page(request, template, **context)


def _carry(ids: list[str]) -> tuple[list[str], bool]:
    """The ids a confirmation carries, and whether it must apply the filter again instead."""
    return (ids, False) if len(ids) <= MAX_CARRIED else ([], True)


@router.post("/dead-letters/redrive/preview")
async def redrive_preview(request: Request, state: State, access: Writer, form: Posted) -> Response:
    """A dry run: how many dead letters the redrive would move, which, and their reasons."""
    flt = form.redrive_filter()
    names = state.settings.names
    selection = await match_dead_letters(state.redis, names, flt, archive=state.archive)
    result = await redrive(
        state.redis, names, flt, operator=access.who or "dashboard", dry_run=True,
        selected=selection,
    )  # fmt: skip
    carried, refilter = _carry(selection.ids)
    return _answer(
        request, step="preview", action="redrive", form=form, ids=selection.ids[:SHOWN],
        matched=result.matched, by_family=result.by_family, carried=carried, refilter=refilter,
    )  # fmt: skip


@router.post("/dead-letters/redrive")
async def redrive_confirm(request: Request, state: State, access: Writer, form: Posted) -> Response:
    """The redrive itself: the previewed dead letters back to their partitions' incoming
    streams; one audit record."""
    flt = form.redrive_filter()
    result = await redrive(
        state.redis, state.settings.names, flt, operator=access.who or "dashboard",
        selected=form.carried, archive=state.archive,
    )  # fmt: skip
    return _answer(request, step="done", action="redrive", form=form, result=result)


@router.post("/dead-letters/purge/preview")
async def purge_preview(request: Request, state: State, _: Writer, form: Posted) -> Response:
    """What a purge would delete: how many dead letters, which, and their reasons."""
    selection = await match_dead_letters(state.redis, state.settings.names, form.purge_filter())
    carried, refilter = _carry(selection.ids)
    return _answer(
        request, step="preview", action="purge", form=form, ids=selection.ids[:SHOWN],
        matched=len(selection.ids), by_family=selection.by_family, carried=carried,
        refilter=refilter,
    )  # fmt: skip


@router.post("/dead-letters/purge")
async def purge_confirm(request: Request, state: State, access: Writer, form: Posted) -> Response:
    """The purge itself: the previewed dead letters deleted; one audit record."""
    result = await purge(
        state.redis, state.settings.names, form.purge_filter(),
        operator=access.who or "dashboard", selected=form.carried,
    )  # fmt: skip
    return _answer(request, step="done", action="purge", form=form, result=result)
