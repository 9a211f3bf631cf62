"""The coach routes serve the cache's bytes: for hostile and large documents they are exactly
what validating the stored document and encoding it again would give, and the same JSON value
the validating route served (``JSONResponse`` of the model's dump)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aredis

from services.coach.io import CoachStore, StageResult
from services.coach.reads import encoded
from shared.models import (
    COACH_STAGES,
    AugmentFromClusterAction,
    CoachDocument,
    NavigateAction,
    RunPlaybookAction,
    Suggestion,
)
from shared.settings import Settings
from shared.validation import Accepted, validate_bytes
from shared.wire import DATA_FIELD
from tests.unit.badinput.corpus import NASTY, corpus

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, 12, 30, 1, 250_000, tzinfo=UTC)


def hostile_events(settings: Settings) -> Iterator[dict[str, Any]]:
    """Every accepted event of the bad-input corpus, as the JSON the coach could copy."""
    for case in corpus():
        data = case.fields.get(DATA_FIELD)
        if case.expect != "valid" or data is None:
            continue
        result = validate_bytes(data, settings.taxonomy)
        if isinstance(result, Accepted):
            yield result.event.model_dump(mode="json")


def suggestions_of(event: dict[str, Any], text: str) -> list[Suggestion]:
    """One suggestion per action kind, carrying the event in params and `text` in its words."""
    params = {"target": text, "event": event, "n": 1.5e16, "small": 1e-7, "neg": -0.0}
    actions = (
        NavigateAction(label=text, params=params),
        RunPlaybookAction(label=text, params={"playbook": text, "rows": 2**62}),
        AugmentFromClusterAction(label=text, params={"cluster_id": text}),
    )
    return [
        Suggestion(severity="critical", title=text, body=text * 3, action=action)
        for action in actions
    ]


def results(settings: Settings) -> list[StageResult]:
    """One document per (hostile event, nasty string), then a large one (≈ 1 MB)."""
    found = []
    events = list(hostile_events(settings))
    assert len(events) > 20  # the corpus's accepted cases are all there
    for i, event in enumerate(events):
        text = NASTY[i % len(NASTY)]
        stage = COACH_STAGES[i % len(COACH_STAGES)]
        found.append(StageResult(1000 + i, stage, 1, suggestions_of(event, text), f"{i}-0"))
    big = [s for event in events[:40] for s in suggestions_of(event, "x" * 2000)]
    found.append(StageResult(999, "eval", 1, big, None))
    return found


def old_body(doc: CoachDocument) -> Any:
    """What the validating route answered: ``JSONResponse(doc.model_dump(mode="json"))``."""
    return json.loads(
        json.dumps(doc.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    )


async def check_served(http: httpx.AsyncClient, stored: bytes, project: int, stage: str) -> None:
    doc = CoachDocument.model_validate_json(stored)
    answer = await http.get(f"/api/projects/{project}/coach/{stage}")
    assert answer.status_code == 200, answer.text
    assert answer.content == encoded(doc)
    assert answer.json() == old_body(doc)
    assert answer.headers["etag"] == f'"{doc.version}"'
    assert answer.headers["content-type"] == "application/json"
    again = await http.get(answer.url, headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_hostile_and_large_documents_are_served_as_validated(
    http: httpx.AsyncClient, async_client: aredis.Redis, settings: Settings
) -> None:
    # given documents the coach's own cache write stored from every hostile event, and a big one
    names = settings.names
    store = CoachStore(async_client, names)
    written = results(settings)
    outcomes = await store.write_many(written, taxonomy_version="tx-bad", now=NOW)
    assert {o.outcome for o in outcomes} == {"written"}
    # when each is read over HTTP, then the bytes are those of its validated model
    for result in written:
        stored = await async_client.get(names.coach_key(result.project_id, result.stage))
        assert stored is not None
        await check_served(http, stored, result.project_id, result.stage)
    big = await async_client.get(names.coach_key(999, "eval"))
    assert big is not None and len(big) > 500_000


async def test_the_project_view_is_the_stored_documents_side_by_side(
    http: httpx.AsyncClient, async_client: aredis.Redis, settings: Settings
) -> None:
    # given three hostile stages of one project
    store = CoachStore(async_client, settings.names)
    event = next(hostile_events(settings))
    written = [StageResult(5, s, 1, suggestions_of(event, NASTY[i]), None)
               for i, s in enumerate(COACH_STAGES[:3])]  # fmt: skip
    await store.write_many(written, taxonomy_version="tx-bad", now=NOW)
    # when the project is read, then it is the validated documents under their stages
    answer = await http.get("/api/projects/5/coach")
    assert answer.status_code == 200
    docs = {}
    for result in written:
        raw = await async_client.get(settings.names.coach_key(5, result.stage))
        assert raw is not None
        docs[result.stage] = CoachDocument.model_validate_json(raw)
    assert answer.json() == {"project_id": 5, "stages": {s: old_body(d) for s, d in docs.items()}}
    assert answer.headers["etag"] == '"1-1-1-0-0"'


@pytest.mark.parametrize(
    "layout",
    [
        # another writer's form: spaces, keys in another order, the version last
        lambda d: json.dumps(d, indent=1).encode(),
        lambda d: json.dumps(dict(reversed(list(d.items())))).encode(),
    ],
    ids=["indented", "reordered"],
)
async def test_a_document_of_another_layout_is_validated_and_encoded_again(
    http: httpx.AsyncClient, async_client: aredis.Redis, settings: Settings, layout: Any
) -> None:
    # given a document stored by something other than the coach's write script
    event = next(hostile_events(settings))
    doc = CoachDocument(
        project_id=8, stage="training", version=41, computed_at=NOW, source_id=None,
        taxonomy_version="tx", suggestions=suggestions_of(event, NASTY[3]),
    )  # fmt: skip
    stored = layout(doc.model_dump(mode="json"))
    await async_client.set(settings.names.coach_key(8, "training"), stored)
    # then it is served as its validated model, with its version, and a poll of it is 304
    await check_served(http, stored, 8, "training")
