"""Stories: from events on the valid stream to the cached suggestion a dashboard reads, and a
later success clearing it — through the real coach worker and the real Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio as aredis

from shared.settings import Settings
from tests.integration.coach.conftest import RunningCoach, cached, document, eventually, publish
from tests.unit.coach.builders import event
from tests.unit.coach.cases import CASES, Case

pytestmark = pytest.mark.integration
P = 41


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_rule_is_cached_then_cleared_by_a_later_success(
    case: Case,
    settings: Settings,
    async_client: aredis.Redis,
    start_coach: Callable[..., RunningCoach],
) -> None:
    # given a running coach worker
    coach = start_coach()
    # when the rule's events reach the valid stream
    raised = case.raise_(P)
    await publish(async_client, settings, raised)

    async def shows() -> bool:
        return case.find(await cached(async_client, settings, P, case.stage)) is not None

    # then the cached document of the stage carries the suggestion
    await eventually(shows, what=f"{case.name} cached")
    case.check(await cached(async_client, settings, P, case.stage))
    before = await document(async_client, settings, P, case.stage)
    assert before is not None and before.project_id == P and before.stage == case.stage
    # when a success later in event time arrives
    await publish(async_client, settings, case.clear(P))

    async def cleared() -> bool:
        return case.find(await cached(async_client, settings, P, case.stage)) is None

    # then the suggestion is gone, under a higher version
    await eventually(cleared, what=f"{case.name} cleared")
    after = await document(async_client, settings, P, case.stage)
    assert after is not None and after.version > before.version
    assert coach.stats.max_writes_per_key <= 1


GOLD = [
    # (rows, severity, top-up) — the seed's transitions and both clamps
    (0, "critical", 300),
    (78, "critical", 222),
    (99, "critical", 201),
    (100, "warning", 200),
    (290, "warning", 20),  # floor: 10 wanted
    (299, "warning", 20),
    (300, None, None),
    (-201, "critical", 500),  # ceiling: 501 wanted (demotions made the sum negative)
]


async def test_gold_set_boundaries_are_cached_with_the_seed_severities_and_top_ups(
    settings: Settings, async_client: aredis.Redis, start_coach: Callable[..., RunningCoach]
) -> None:
    # given one project per boundary, its rows promoted in two events (counted once each)
    events = []
    for project, (rows, _, _) in enumerate(GOLD, start=100):
        half = rows // 2
        for t, part in ((1, half), (2, rows - half)):
            payload = {"target": "gold_set", "rows": part}
            events.append(event("annotation_rows_promoted", t=t, project=project, payload=payload))
    # when the coach handles them (every event delivered twice: a replay)
    start_coach()
    await publish(async_client, settings, events + events)

    async def all_cached() -> bool:
        docs = [
            await document(async_client, settings, p, "gold_set")
            for p in range(100, 100 + len(GOLD))
        ]
        return all(doc is not None for doc in docs)

    await eventually(all_cached, what="gold-set documents")
    # then each project's document has the seed's severity and top-up
    for project, (rows, severity, topup) in enumerate(GOLD, start=100):
        found = await cached(async_client, settings, project, "gold_set")
        if severity is None:
            assert found == [], (rows, found)
            continue
        assert [(s.severity, s.title) for s in found] == [
            (severity, f"Your gold set has {rows} rows")
        ]
        assert found[0].action.kind == "run_playbook"
        assert found[0].action.params["rows"] == topup
