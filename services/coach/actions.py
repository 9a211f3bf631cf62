"""Action requests: a click on a coach suggestion's button, recorded on the actions stream.

runbus is not the platform: it carries nothing out. A click names the suggestion the user saw
(project, coach stage, document version, index in the document) and the request is built from
the cached document itself (`services.coach.reads.get_document`), never from kind or params a
client sends: the platform reads exactly what the coach suggested. A document that changed
since the user saw it is refused (`SuggestionChanged`, the page refreshes), so a click never
records an action the user was not shown. The check and the XADD are two commands (the coach
key and the actions stream are in different slots on a cluster); the request carries the
version it was checked against.

``POST /api/projects/{id}/coach/{stage}/actions`` is `request_action`; ``GET /api/actions`` is
`recent_actions`. The dashboard's buttons call the same functions.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aredis

from services.coach.navigate import navigate_url
from services.coach.reads import get_document, get_project
from shared.logging import get_logger
from shared.models import COACH_STAGES, ActionRequest, CoachDocument
from shared.names import Names
from shared.settings import Settings
from shared.wire import Fields, action_fields, as_text, parse_action

log = get_logger("runbus.coach")
#: Who asked, when neither the client nor ``RUNBUS_OPERATOR`` says (as a redrive's audit).
DEFAULT_WHO = "api"


class ActionRefused(Exception):
    """A click the library does not record: `code` is stable, `extra` goes into the error body."""

    code = "action_refused"

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


class DocumentNotFound(ActionRefused):
    """No cached document for (project, stage): `project_not_found` or `stage_not_found`."""


class SuggestionChanged(ActionRefused):
    """The cached document is at another version than the one the user saw."""


class SuggestionNotFound(ActionRefused):
    """The document the user saw has no suggestion at that index."""


def _not_found(kind: str, ident: object) -> DocumentNotFound:
    return DocumentNotFound(f"{kind}_not_found", f"no {kind} {ident!s}", **{kind: str(ident)})


async def cached_document(
    client: aredis.Redis, names: Names, project_id: int, stage: str
) -> CoachDocument:
    """The cached document of (project, stage); `DocumentNotFound` says which one is unknown."""
    if stage not in COACH_STAGES:
        raise _not_found("stage", stage)
    doc = await get_document(client, names, project_id, stage)
    if doc is not None:
        return doc
    if await get_project(client, names, project_id) is None:
        raise _not_found("project", project_id)
    raise _not_found("stage", stage)


def build_request(
    doc: CoachDocument,
    *,
    version: int,
    index: int,
    who: str,
    url_template: str | None,
    now: datetime | None = None,
) -> ActionRequest:
    """The request for suggestion `index` of `doc` as seen at `version` (raises if it cannot be)."""
    if version != doc.version:
        raise SuggestionChanged(
            "suggestion_changed",
            f"the suggestions changed: version {doc.version}, not {version}; read them again",
            version=doc.version,
        )
    if not 0 <= index < len(doc.suggestions):
        raise SuggestionNotFound(
            "suggestion_not_found",
            f"version {version} has {len(doc.suggestions)} suggestions, no index {index}",
            suggestion=str(index),
        )
    suggestion = doc.suggestions[index]
    action = suggestion.action
    return ActionRequest(
        request_id=uuid.uuid4().hex,
        who=who,
        requested_at=now or datetime.now(UTC),
        project_id=doc.project_id,
        stage=doc.stage,
        title=suggestion.title,
        version=doc.version,
        index=index,
        kind=action.kind,
        label=action.label,
        params=action.params,
        url=navigate_url(url_template, doc.project_id, doc.stage, action),
    )


async def request_action(
    client: aredis.Redis,
    names: Names,
    settings: Settings,
    *,
    project_id: int,
    stage: str,
    version: int,
    index: int,
    who: str | None = None,
) -> ActionRequest:
    """Record a click on suggestion `index` of (project, stage) at `version`; one XADD.

    `who` defaults to ``RUNBUS_OPERATOR``, else ``api``. The stream is capped at
    ``RUNBUS_ACTIONS_MAX_LEN`` entries (approximate MAXLEN: Redis trims whole nodes).
    """
    doc = await cached_document(client, names, project_id, stage)
    request = build_request(
        doc,
        version=version,
        index=index,
        who=who or settings.operator or DEFAULT_WHO,
        url_template=settings.action_url_template,
    )
    entry = await client.xadd(
        names.actions,
        action_fields(request),  # type: ignore[arg-type]
        maxlen=settings.actions_max_len,
        approximate=True,
    )
    log.info(
        "action_requested",
        entry_id=as_text(entry),
        request_id=request.request_id,
        project_id=project_id,
        stage=stage,
        kind=request.kind,
    )
    return request


def _parsed(fields: Fields) -> ActionRequest | None:
    try:
        return parse_action(fields)
    except (KeyError, ValueError):  # a foreign entry (pydantic's errors are ValueErrors)
        return None


async def recent_actions(
    client: aredis.Redis, names: Names, limit: int = 20
) -> list[ActionRequest]:
    """The newest `limit` action requests, newest first (entries that are not one skipped)."""
    reply: list[tuple[bytes, Fields]] = await client.xrevrange(  # type: ignore[assignment]
        names.actions, "+", "-", count=limit
    )
    found = (_parsed(fields) for _entry, fields in reply)
    return [request for request in found if request is not None]
