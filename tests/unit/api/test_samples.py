"""The status sampler's pure parts: rates, stream points, dead letters by family, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.samples import (
    Counted,
    build_sample,
    dead_by_family,
    down_sample,
    rates,
    service_health,
    stage_health,
    stream_points,
)
from services.ops.health import MAX_IDLE_S
from services.ops.models import BusStatus, ConsumerStatus, GroupStatus, StreamStatus
from services.ops.status import role_totals
from shared.metrics import StageMetrics
from shared.pipeline import PIPELINE

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
VALIDATOR = PIPELINE.stage("validator")


def entry_id(age_s: float) -> str:
    """An entry id written `age_s` seconds before NOW."""
    return f"{int((NOW - timedelta(seconds=age_s)).timestamp() * 1000)}-0"


def group(name: str, *, idle_s: float | None = 1.0, **kw: Any) -> GroupStatus:
    consumers = (
        []
        if idle_s is None
        else [ConsumerStatus(name=f"{name}-a", pending=0, idle_ms=int(idle_s * 1000))]
    )
    kw.setdefault("lag", 0)
    return GroupStatus(name=name, exists=True, expected=True, consumers=consumers, **kw)


def stream(role: str, groups: list[GroupStatus], partition: int = 0, **kw: Any) -> StreamStatus:
    return StreamStatus(role=role, partition=partition, name=f"{role}-{partition}", exists=True,
                        groups=groups, **kw)  # fmt: skip


def bus(*streams: StreamStatus) -> BusStatus:
    return BusStatus(namespace="t", at=NOW, streams=list(streams), dead_letters=0,
                     totals=role_totals(streams))  # fmt: skip


def events(**kw: Any) -> StreamStatus:
    """The incoming stream with the validator's group built from `kw`."""
    stream_kw = {k: kw.pop(k) for k in ("last_id", "first_age_s", "length") if k in kw}
    return stream("events", [group("validator", **kw)], **stream_kw)


def health_of(status: BusStatus | None, rate: float | None = None) -> str:
    return stage_health(VALIDATOR, status, rate, NOW)


def test_unknown_without_a_sample() -> None:
    assert health_of(None) == "unknown"


def test_down_without_its_group() -> None:
    missing = stream("events", [GroupStatus(name="validator", exists=False, expected=True)])
    assert health_of(bus(missing)) == "down"
    assert health_of(bus(stream("events", []))) == "down"
    assert health_of(bus()) == "down"  # not even the stream


def test_up_when_a_consumer_read_recently() -> None:
    assert health_of(bus(events(idle_s=2.0))) == "up"


def test_up_when_it_handled_entries_since_the_last_sample() -> None:
    assert health_of(bus(events(idle_s=MAX_IDLE_S + 60)), rate=12.5) == "up"


def test_idle_when_nothing_waits_and_nobody_read_lately() -> None:
    assert health_of(bus(events(idle_s=MAX_IDLE_S + 60)), rate=0.0) == "idle"
    assert health_of(bus(events(idle_s=None))) == "idle"  # no consumer yet, nothing waits


def test_down_when_work_waits_too_long_and_nobody_reads() -> None:
    old = entry_id(MAX_IDLE_S + 30)
    status = bus(events(idle_s=MAX_IDLE_S + 60, lag=3, last_delivered_id=old,
                        last_id=entry_id(1)))  # fmt: skip
    assert health_of(status) == "down"


def test_work_waiting_is_fine_while_a_consumer_reads() -> None:
    old = entry_id(MAX_IDLE_S + 30)
    status = bus(events(idle_s=0.5, lag=3, last_delivered_id=old, last_id=entry_id(1)))
    assert health_of(status) == "up"


def test_recent_work_waiting_is_not_down_yet() -> None:
    status = bus(events(idle_s=None, lag=1, last_delivered_id=entry_id(5), last_id=entry_id(1)))
    assert health_of(status) == "idle"


def test_nothing_delivered_yet_waits_since_the_first_entry() -> None:
    status = bus(events(idle_s=None, lag=None, last_delivered_id="0-0", last_id=entry_id(1),
                        first_age_s=MAX_IDLE_S + 1))  # fmt: skip
    assert health_of(status) == "down"


def test_every_partition_must_be_served() -> None:
    old = entry_id(MAX_IDLE_S + 30)
    served = stream("events", [group("validator", idle_s=0.5)], partition=0)
    stuck_group = group("validator", idle_s=None, lag=2, last_delivered_id=old)
    stuck = stream("events", [stuck_group], partition=1, last_id=entry_id(0))
    assert health_of(bus(served, stuck)) == "down"


def test_service_health_names_every_stage_in_order() -> None:
    status = bus(events(idle_s=1.0), stream("valid", [group("persister", idle_s=1.0)]))
    assert service_health(status, {}, NOW) == {
        "validator": "up",
        "persister": "up",
        "coach": "down",  # its group is absent
    }
    assert set(service_health(None, {}, NOW).values()) == {"unknown"}


def test_rates_per_second_between_two_readings() -> None:
    before = Counted(NOW, {"validator": 100, "coach": 50})
    after = Counted(NOW + timedelta(seconds=2), {"validator": 300, "coach": 10, "persister": 1})
    assert rates(before, after) == {"validator": 100.0, "coach": None, "persister": None}
    assert rates(None, after) == {"validator": None, "coach": None, "persister": None}
    assert rates(after, after) == {"validator": None, "coach": None, "persister": None}


def test_stream_points_sum_their_groups() -> None:
    valid = stream(
        "valid", [group("persister", lag=2, pending=1), group("coach", lag=3, pending=4)], length=9
    )
    unknown = stream("events", [group("validator", lag=None)])
    points = stream_points(bus(valid, unknown))
    assert [(p.role, p.length, p.lag, p.pending) for p in points] == [
        ("valid", 9, 5, 5),
        ("events", 0, None, 0),
    ]


def test_dead_letters_by_family_over_every_stage() -> None:
    rows = [
        StageMetrics("validator", reasons={"invalid_stage": 2, "malformed_json": 1}),
        StageMetrics("coach", reasons={"invalid_stage": 1, "attempts_exceeded": 3}),
    ]
    assert [(c.key, c.count) for c in dead_by_family(rows)] == [
        ("attempts_exceeded", 3),
        ("invalid_stage", 3),
        ("malformed_json", 1),
    ]


def test_build_sample_and_down_sample() -> None:
    status = bus(events(idle_s=1.0, length=4))
    metrics = [StageMetrics(name, entries=10) for name in PIPELINE.stage_names]
    first, counted = build_sample(status, metrics, None)
    assert first.up and first.status == status and first.at == NOW
    assert [(s.stage, s.rate, s.entries) for s in first.stages] == [
        (name, None, 10) for name in PIPELINE.stage_names
    ]
    later = status.model_copy(update={"at": NOW + timedelta(seconds=2)})
    more = [StageMetrics(name, entries=20) for name in PIPELINE.stage_names]
    second, _ = build_sample(later, more, counted)
    assert [s.rate for s in second.stages] == [5.0, 5.0, 5.0]
    assert [s.health for s in second.stages] == ["up", "down", "down"]
    down = down_sample(NOW, "refused")
    assert not down.up and down.error == "refused"
    assert {s.health for s in down.stages} == {"unknown"}


@pytest.mark.parametrize("partitions", [1, 3])
def test_views_follow_the_partitions(partitions: int) -> None:
    streams = [stream("events", [group("validator")], partition=i) for i in range(partitions)]
    assert health_of(bus(*streams)) == "up"
