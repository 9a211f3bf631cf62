"""The overview's pure pieces: sparklines, links, idle times, partition grouping, health words."""

from __future__ import annotations

from datetime import UTC, datetime

from services.api.ui.links import dead_letters_url
from services.api.ui.overview_model import (
    Reading,
    overview_view,
    partitions_of,
    rate_text,
)
from services.api.ui.sparkline import HEIGHT, PAD, WIDTH, sparkline
from services.ops.models import BusStatus, ConsumerStatus, Count, GroupStatus, StreamStatus

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def points(line: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in line.split())]


def test_a_sparkline_spans_the_box_with_its_peak_at_the_top() -> None:
    spark = sparkline([0.0, 5.0, 10.0])
    (line,) = spark.lines
    drawn = points(line)
    assert [x for x, _ in drawn] == [0.0, WIDTH / 2, WIDTH]
    assert drawn[0][1] == HEIGHT - PAD and drawn[2][1] == PAD
    assert spark.peak == 10.0 and spark.last == 10.0


def test_a_gap_breaks_the_line_and_a_short_history_grows_from_the_right() -> None:
    spark = sparkline([1.0, None, 2.0, 3.0], slots=10)
    assert len(spark.lines) == 2
    assert points(spark.lines[-1])[-1][0] == WIDTH
    assert points(spark.lines[0])[0][0] > 0  # six empty slots to the left
    assert sparkline([]).lines == () and sparkline([None]).last is None


def test_a_flat_zero_series_lies_on_the_floor_and_one_point_still_draws() -> None:
    assert {y for _, y in points(sparkline([0.0, 0.0]).lines[0])} == {HEIGHT - PAD}
    (single,) = sparkline([4.0], slots=5).lines
    assert len(points(single)) == 2


def test_links_filter_the_dead_letters_page() -> None:
    assert dead_letters_url(source="events", stage="validator") == (
        "/ui/dead-letters?source=events&stage=validator"
    )
    assert dead_letters_url(reason="a b&c") == "/ui/dead-letters?reason=a+b%26c"
    assert dead_letters_url(source="") == "/ui/dead-letters"


def test_rates_are_short() -> None:
    assert [rate_text(r) for r in (None, 0.0, 2.345, 1234.5)] == ["-", "0.0/s", "2.3/s", "1234/s"]


def status(partitions: int) -> BusStatus:
    consumer = ConsumerStatus(name="validator-h-0", pending=2, idle_ms=125_000)
    group = GroupStatus(name="validator", exists=True, expected=True, consumers=[consumer])
    streams = [
        StreamStatus(role=role, partition=p, name=f"{{ns.{p}}}:{role}", exists=True,
                     groups=[group] if role == "events" else [])
        for p in range(partitions)
        for role in ("events", "valid", "dead")
    ]  # fmt: skip
    return BusStatus(namespace="ns", at=AT, streams=streams, dead_letters=0, partitions=partitions)


def test_streams_are_grouped_by_partition_with_idle_times_in_human_units() -> None:
    parts = partitions_of(status(3))
    assert [p.index for p in parts] == [0, 1, 2]
    assert all([r.stream.role for r in p.streams] == ["events", "valid", "dead"] for p in parts)
    (group,) = parts[1].streams[0].groups
    assert group.consumers[0].idle == "2m05s"
    assert group.link == "/ui/dead-letters?source=events&stage=validator"
    assert parts[1].streams[2].link == "/ui/dead-letters"  # the dead stream is no source


def test_unknown_health_words_and_a_missing_redis_read_as_unknown_and_down() -> None:
    view = overview_view(Reading(AT, status(1), health={"validator": "up", "coach": "<b>"}))
    words = {s.name: s.health for s in view.services}
    assert words == {"validator": "up", "persister": "unknown", "coach": "unknown", "api": "up"}
    assert view.totals == ()
    down = overview_view(Reading(AT, None, error="refused"))
    assert not down.up and {s.name: s.health for s in down.services}["api"] == "down"
    assert down.partitions == ()


def test_families_link_to_their_dead_letters() -> None:
    counts = [Count(key="malformed_json", count=3)]
    view = overview_view(Reading(AT, status(2), dead_by_family=counts))
    assert view.families[0].link == "/ui/dead-letters?reason=malformed_json"
    assert view.families[0].count == 3
