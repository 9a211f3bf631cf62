"""The dashboards' hot read, answered before routing: ``GET /api/projects/{id}/coach/{stage}``
of a cached document (200 with its bytes, or 304).

The strips of every open dashboard poll it. Through FastAPI, routing, dependency solving and
the response classes cost more than the read itself, so this middleware answers the two
successful outcomes with the route's own decision (`routes.coach.stage_answer`: the same
headers, bytes and ETag rules). Everything else goes on to the app, whose route stays the one
declaration of the endpoint (its OpenAPI entry, its 404/422/401/503 answers): another method or
path, a project id the route would parse differently, a stage it does not know, a missing
document, a token that does not pass, an app not started, any error on the way.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.routes.coach import StageAnswer, stage_answer, versioned_headers
from services.api.routes.history import MAX_PROJECT_ID
from services.api.state import ApiState, token_accepted
from shared.models import COACH_STAGES

#: The route's path with a project id in canonical form (other forms go to the route).
PATH: Final = re.compile(r"/api/projects/(0|[1-9][0-9]{0,18})/coach/([a-z_]{1,16})")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class CoachFastPath:
    """ASGI middleware: the coach stage read, when it succeeds, without the app."""

    def __init__(self, app: ASGIApp, api: object) -> None:
        self.app = app
        self.api = api  # the FastAPI app: its state holds the ApiState once started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = PATH.fullmatch(scope["path"])
            if found is not None and (answer := await self._answer(scope, found)) is not None:
                await _send(send, answer)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, found: re.Match[str]) -> StageAnswer | None:
        state: ApiState | None = getattr(getattr(self.api, "state", None), "api", None)
        project_id, stage = int(found[1]), found[2]
        if state is None or project_id > MAX_PROJECT_ID or stage not in COACH_STAGES:
            return None
        settings = state.settings
        if settings.api_read_token_required and not token_accepted(
            _header(scope, b"authorization") or "", settings
        ):
            return None
        try:
            return await stage_answer(
                state.reads,
                settings.names,
                project_id,
                stage,
                _header(scope, b"if-none-match"),
                state.live.versions,
            )
        except Exception:  # the route answers it (503, a JSON 500), with its own handlers
            return None


async def _send(send: Send, answer: StageAnswer) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in versioned_headers(answer.etag).items()]
    if answer.body is None:
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-length", b"%d" % len(answer.body)),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
