"""Reading the coach cache: what `runbus coach show` and the HTTP API serve.

``GET /api/projects/{id}/coach/{stage}`` is `get_document`; ``GET /api/projects/{id}/coach``
is `get_project`. Both return None for what the coach does not know (unknown project, unknown
stage), so the API can answer 404. A project's documents share its hash tag, so `get_project`
is one ``MGET`` even on a Redis Cluster.
"""

from __future__ import annotations

import redis.asyncio as aredis

from shared.models import COACH_STAGES, CoachDocument
from shared.names import Names


async def get_document(
    client: aredis.Redis, names: Names, project_id: int, stage: str
) -> CoachDocument | None:
    """The cached suggestions of one (project, coach stage), or None."""
    if stage not in COACH_STAGES:
        return None
    raw = await client.get(names.coach_key(project_id, stage))
    return None if raw is None else CoachDocument.model_validate_json(raw)


async def get_project(
    client: aredis.Redis, names: Names, project_id: int
) -> dict[str, CoachDocument] | None:
    """Every cached stage document of a project, in coach-stage order, or None if none."""
    raws = await client.mget([names.coach_key(project_id, stage) for stage in COACH_STAGES])
    docs = {
        stage: CoachDocument.model_validate_json(raw)
        for stage, raw in zip(COACH_STAGES, raws, strict=True)
        if raw is not None
    }
    return docs or None


async def known_projects(client: aredis.Redis, names: Names) -> list[int]:
    """Project ids the coach has state for, ascending."""
    members = await client.smembers(names.coach_projects)
    return sorted(int(m) for m in members)


async def is_known_project(client: aredis.Redis, names: Names, project_id: int) -> bool:
    """True when the coach has state for the project (one SISMEMBER)."""
    return bool(await client.sismember(names.coach_projects, str(project_id)))
