"""Reading the coach cache: what `runbus coach show` and the HTTP API serve.

`get_document` and `get_project` return validated `CoachDocument`s (the CLI, the dashboard's
strips, the action check). The HTTP API serves the cache's own bytes instead: `cached_document`
and `cached_project` return each document's JSON as stored with its version, and
`cached_version` reads only the version, for a 304. All return None for what the coach does not
know (unknown project, unknown stage), so the API can answer 404. A project's documents share
its hash tag, so a project read is one ``MGET`` even on a Redis Cluster.

The version is where the coach's write script puts it: every document starts
``{"project_id":<p>,"stage":"<stage>","version":<v>,`` (the script writes ``head .. version ..
tail``, `services.coach.io.DocumentTemplate`), so the first `HEAD_BYTES` of the value carry it
(``GETRANGE``: the document is neither read whole nor validated, and the version can never
disagree with the document it heads, as a key of its own could). A value whose head has another
form (an older writer's) is validated and encoded again, as before: the bytes served are then
those of `encoded`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson
import redis.asyncio as aredis

from shared.models import COACH_STAGES, CoachDocument
from shared.names import Names

_HEAD: Final = re.compile(
    rb'\{"project_id":(-?\d{1,20}),"stage":"([a-z_]{1,16})","version":(\d{1,20}),'
)
#: Longest head `_HEAD` matches (20-digit id and version, a 16-letter stage): 85 bytes.
HEAD_BYTES: Final = 96


class KeyReader(Protocol):
    """What `cached_version` and `cached_document` read through: a client, or the API's
    `services.api.coalesce.CoalescedReads` around one."""

    def get(self, name: str) -> Any:
        """``GET``: awaitable of the value or None."""

    def getrange(self, name: str, start: int, end: int) -> Any:
        """``GETRANGE``: awaitable of the bytes in range."""


@dataclass(frozen=True, slots=True)
class Cached:
    """One cached document as served: its version and its JSON."""

    version: int
    body: bytes


def encoded(doc: CoachDocument) -> bytes:
    """A document's JSON as the coach writes it (orjson of the model's JSON form)."""
    return orjson.dumps(doc.model_dump(mode="json"))


def head_version(raw: bytes, project_id: int, stage: str) -> int | None:
    """The version in the head of the (project, stage) document `raw` starts, or None when
    its head is not the coach's."""
    found = _HEAD.match(raw)
    if found is None or int(found[1]) != project_id or found[2] != stage.encode():
        return None
    return int(found[3])


def _bytes(value: bytes | str) -> bytes:
    # The clients of `shared.connections` return bytes; a decoding client would give str.
    return value if isinstance(value, bytes) else value.encode()


def served(raw: bytes | str, project_id: int, stage: str) -> Cached:
    """The stored bytes with the version of their head; another form is validated first."""
    raw = _bytes(raw)
    version = head_version(raw, project_id, stage)
    if version is not None:
        return Cached(version, raw)
    doc = CoachDocument.model_validate_json(raw)
    return Cached(doc.version, encoded(doc))


async def cached_version(
    client: KeyReader, names: Names, project_id: int, stage: str
) -> int | None:
    """The version of a cached document from its head alone, or None (no such document, or
    a head of another form: read it whole)."""
    if stage not in COACH_STAGES:
        return None
    head = await client.getrange(names.coach_key(project_id, stage), 0, HEAD_BYTES - 1)
    return head_version(_bytes(head), project_id, stage) if head else None


async def cached_document(
    client: KeyReader, names: Names, project_id: int, stage: str
) -> Cached | None:
    """One (project, coach stage) document as stored, with its version, or None."""
    if stage not in COACH_STAGES:
        return None
    raw = await client.get(names.coach_key(project_id, stage))
    return None if raw is None else served(raw, project_id, stage)


async def cached_project(
    client: aredis.Redis, names: Names, project_id: int
) -> dict[str, Cached] | None:
    """Every cached document of a project as stored, in coach-stage order, or None if none."""
    raws = await client.mget([names.coach_key(project_id, stage) for stage in COACH_STAGES])
    docs = {
        stage: served(raw, project_id, stage)
        for stage, raw in zip(COACH_STAGES, raws, strict=True)
        if raw is not None
    }
    return docs or None


async def has_documents(client: aredis.Redis, names: Names, project_id: int) -> bool:
    """True when the project has any cached document (one ``MGET``, nothing decoded)."""
    raws = await client.mget([names.coach_key(project_id, stage) for stage in COACH_STAGES])
    return any(raw is not None for raw in raws)


def project_body(project_id: int, docs: dict[str, Cached]) -> bytes:
    """``{"project_id", "stages": {stage: document}}`` around the stored documents' bytes."""
    stages = b",".join(orjson.dumps(stage) + b":" + doc.body for stage, doc in docs.items())
    return b'{"project_id":%d,"stages":{%s}}' % (project_id, stages)


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
