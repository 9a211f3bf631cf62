"""Which dead letters the retention policy expires: a prefix of the stream, oldest first."""

from __future__ import annotations

import pytest

from services.persister.retention import Arrivals, Policy, after, expired_prefix

IDS = ["1000-0", "1000-1", "2000-0", "3000-0", "4000-0"]


@pytest.mark.parametrize(
    ("cutoff_ms", "excess", "expected"),
    [
        (None, 0, 0),  # no limit at all
        (None, 2, 2),  # the two oldest are beyond the length limit
        (None, 9, 5),  # more excess than the chunk holds: the whole chunk
        (2000, 0, 2),  # strictly older than the cutoff: 2000-0 stays
        (2001, 0, 3),
        (2001, 4, 4),  # the larger of the two limits wins
        (500, 1, 1),
        (9999, 0, 5),
    ],
)
def test_the_expired_entries_are_a_prefix(
    cutoff_ms: int | None, excess: int, expected: int
) -> None:
    assert expired_prefix(IDS, cutoff_ms, excess) == expected


def test_limits_of_zero_mean_no_limit() -> None:
    policy = Policy(max_age_s=0, max_entries=0)
    assert policy.cutoff_ms(1_000_000.0) is None
    assert policy.excess(10**9) == 0


def test_the_policy_counts_from_now_and_from_the_length_leaving_headroom() -> None:
    policy = Policy(max_age_s=60, max_entries=100)
    assert policy.cutoff_ms(1000.0) == 940_000
    assert policy.headroom == 10
    assert policy.excess(150) == 60  # down to 90: room for what comes before the next sweep
    assert policy.excess(91) == 1
    assert policy.excess(90) == 0


def test_a_stream_is_crowded_once_half_its_headroom_is_used() -> None:
    policy = Policy(max_age_s=0, max_entries=20_000)
    assert not policy.crowded(18_000) and not policy.crowded(19_000)
    assert policy.crowded(19_001)
    assert not Policy(max_age_s=60, max_entries=0).crowded(10**9)


def test_small_limits_have_no_headroom() -> None:
    policy = Policy(max_age_s=0, max_entries=4)
    assert policy.headroom == 0 and policy.excess(5) == 1 and policy.crowded(5)


def test_the_trim_keeps_everything_after_the_last_archived_id() -> None:
    assert after("1700000000000-0") == "1700000000000-1"
    assert after("5-18446744073709551614") == "5-18446744073709551615"
    assert after("5-18446744073709551615") == "6-0"


def test_under_a_flood_a_sweep_leaves_room_for_a_second_of_arrivals_at_most_half() -> None:
    policy = Policy(max_age_s=0, max_entries=20_000)
    assert policy.room(0.0) == policy.room(1_500.0) == 2_000  # the headroom covers it
    assert policy.room(6_000.0) == 6_000
    assert policy.room(50_000.0) == 10_000  # never more than half the limit
    assert policy.excess(19_000, 6_000.0) == 5_000  # down to 14,000
    assert policy.crowded(17_001, 6_000.0) and not policy.crowded(17_000, 6_000.0)


def test_arrivals_are_counted_from_what_was_added_not_from_the_length() -> None:
    arrivals = Arrivals()
    assert arrivals.rate("s") == 0.0
    arrivals.saw("s", 10.0, 1_000)
    assert arrivals.rate("s") == 0.0  # one look tells no rate
    arrivals.saw("s", 10.5, 4_000)  # a sweep may have shortened the stream meanwhile
    assert arrivals.rate("s") == 6_000.0
    arrivals.saw("s", 11.0, 4_000)
    assert arrivals.rate("s") == 0.0 and arrivals.rate("other") == 0.0
