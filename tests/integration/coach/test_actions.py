"""Stories of action requests against the real Redis: a click on a suggestion the coach really
cached writes exactly one entry on the actions stream, built from that document; a stale or
unknown click writes nothing; the stream stays capped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aredis

from services.coach import logic
from services.coach.actions import (
    DocumentNotFound,
    SuggestionChanged,
    SuggestionNotFound,
    recent_actions,
    request_action,
)
from services.coach.io import CoachStore, StageResult
from shared.models import CoachDocument
from shared.settings import Settings
from shared.wire import DATA_FIELD, parse_action
from tests.integration.coach.conftest import RunningCoach, document, eventually, publish
from tests.unit.coach.builders import event, state_of

pytestmark = pytest.mark.integration
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TEMPLATE = "https://platform.example/projects/{project_id}/{target}"


async def cache_training(client: aredis.Redis, settings: Settings, *codes: str) -> CoachDocument:
    """Write project 3's training suggestions for `codes` through the coach's own write path."""
    store = CoachStore(client, settings.names)
    events = [event(code, t=i, project=3) for i, code in enumerate(codes)]
    found = logic.suggest("training", state_of(events))
    rev = int(await client.incr(f"{settings.namespace}:test-rev"))
    await store.write(
        StageResult(3, "training", rev, found, f"{rev}-0"), taxonomy_version="tx", now=NOW
    )
    doc = await document(client, settings, 3, "training")
    assert doc is not None and doc.suggestions
    return doc


async def entries(
    client: aredis.Redis, settings: Settings
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    found: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(settings.names.actions)  # type: ignore[assignment]
    return found


async def test_a_click_on_what_the_coach_computed_writes_exactly_one_request(
    settings: Settings, async_client: aredis.Redis, start_coach: Callable[..., RunningCoach]
) -> None:
    # given the running coach advising on project 7's training after an out-of-memory failure
    config = settings.model_copy(update={"action_url_template": TEMPLATE, "operator": "ops-1"})
    await publish(async_client, settings, [event("training_oom", t=1, project=7)])
    await start_coach().handled(1)
    doc = await document(async_client, settings, 7, "training")
    assert doc is not None
    seen = doc.suggestions[0]
    # when the user clicks its action button at the version they saw
    request = await request_action(
        async_client, settings.names, config,
        project_id=7, stage="training", version=doc.version, index=0, who="ana",
    )  # fmt: skip
    # then one entry is on the actions stream, its __data__ exactly the returned request
    (entry,) = await entries(async_client, settings)
    assert set(entry[1]) == {DATA_FIELD}
    assert parse_action(entry[1]) == request
    # and it is what the coach cached, not what any client could have sent
    assert (request.project_id, request.stage, request.version, request.index) == (
        7, "training", doc.version, 0
    )  # fmt: skip
    assert (request.title, request.kind, request.label) == (
        seen.title, seen.action.kind, seen.action.label
    )  # fmt: skip
    assert request.params == seen.action.params and request.who == "ana"
    assert request.requested_at.tzinfo == UTC
    # and the navigate action got its URL from the template and the coach's params
    assert seen.action.kind == "navigate"
    assert request.url == f"https://platform.example/projects/7/{seen.action.params['target']}"
    # and the listing shows it
    assert await recent_actions(async_client, settings.names) == [request]


async def test_who_defaults_to_the_operator_then_api(
    settings: Settings, async_client: aredis.Redis
) -> None:
    doc = await cache_training(async_client, settings, "training_oom")
    click: dict[str, Any] = {
        "project_id": 3,
        "stage": "training",
        "version": doc.version,
        "index": 0,
    }
    named = settings.model_copy(update={"operator": "ops-1"})
    first = await request_action(async_client, settings.names, named, **click)
    second = await request_action(async_client, settings.names, settings, **click)
    assert (first.who, second.who) == ("ops-1", "api")
    # newest first
    assert [r.request_id for r in await recent_actions(async_client, settings.names)] == [
        second.request_id, first.request_id
    ]  # fmt: skip


async def test_a_stale_version_is_refused_and_writes_nothing(
    settings: Settings, async_client: aredis.Redis
) -> None:
    # given the user saw version 1, and the coach has since changed its mind (version 2)
    seen = await cache_training(async_client, settings, "training_oom")
    now = await cache_training(async_client, settings, "training_oom", "training_timeout")
    assert now.version == seen.version + 1
    # when they click what they saw
    with pytest.raises(SuggestionChanged) as refused:
        await request_action(
            async_client, settings.names, settings,
            project_id=3, stage="training", version=seen.version, index=0,
        )  # fmt: skip
    # then it is refused with the current version, and the stream has nothing
    assert refused.value.code == "suggestion_changed"
    assert refused.value.extra == {"version": now.version}
    assert await entries(async_client, settings) == []


@pytest.mark.parametrize(
    ("project", "stage", "code"),
    [(404, "training", "project_not_found"), (3, "eval", "stage_not_found"),
     (3, "deployment", "stage_not_found")],
)  # fmt: skip
async def test_an_unknown_document_is_not_found_and_writes_nothing(
    settings: Settings, async_client: aredis.Redis, project: int, stage: str, code: str
) -> None:
    await cache_training(async_client, settings, "training_oom")  # project 3 knows training only
    with pytest.raises(DocumentNotFound) as refused:
        await request_action(
            async_client, settings.names, settings,
            project_id=project, stage=stage, version=1, index=0,
        )  # fmt: skip
    assert refused.value.code == code
    assert await entries(async_client, settings) == []


async def test_an_index_beyond_the_document_writes_nothing(
    settings: Settings, async_client: aredis.Redis
) -> None:
    doc = await cache_training(async_client, settings, "training_oom")
    with pytest.raises(SuggestionNotFound):
        await request_action(
            async_client, settings.names, settings,
            project_id=3, stage="training", version=doc.version, index=len(doc.suggestions),
        )  # fmt: skip
    assert await entries(async_client, settings) == []


async def test_the_stream_is_capped_at_the_configured_length(
    settings: Settings, async_client: aredis.Redis
) -> None:
    # given a cap of 10 (approximate: Redis trims whole nodes of stream-node-max-entries)
    capped = settings.model_copy(update={"actions_max_len": 10})
    config: dict[str, str] = await async_client.config_get("stream-node-max-entries")  # type: ignore[assignment]
    node = int(config["stream-node-max-entries"])
    doc = await cache_training(async_client, settings, "training_oom")
    clicks = 3 * node + 7
    # when many more clicks than that are recorded
    for _ in range(clicks):
        await request_action(
            async_client, settings.names, capped,
            project_id=3, stage="training", version=doc.version, index=0,
        )  # fmt: skip
    # then the stream kept at least the cap and at most one node more, and the newest ones
    length = await async_client.xlen(settings.names.actions)
    assert 10 <= length <= 10 + node < clicks
    assert len(await recent_actions(async_client, settings.names, limit=1000)) == length


async def test_foreign_entries_are_skipped_by_the_listing(
    settings: Settings, async_client: aredis.Redis
) -> None:
    doc = await cache_training(async_client, settings, "training_oom")
    click: dict[str, Any] = {
        "project_id": 3,
        "stage": "training",
        "version": doc.version,
        "index": 0,
    }
    mine = await request_action(async_client, settings.names, settings, **click)
    await async_client.xadd(settings.names.actions, {b"__data__": b"{not json"})
    await async_client.xadd(settings.names.actions, {b"other": b"field"})
    await eventually(lambda: _length_is(async_client, settings, 3))
    assert await recent_actions(async_client, settings.names) == [mine]


async def _length_is(client: aredis.Redis, settings: Settings, length: int) -> bool:
    return int(await client.xlen(settings.names.actions)) == length
