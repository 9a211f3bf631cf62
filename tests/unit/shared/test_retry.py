"""shared.retry: full-jitter backoff below the same ceilings, and an outage logged once each way."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from structlog.testing import capture_logs

from shared.logging import get_logger
from shared.retry import Backoff, OutageLog


@dataclass
class Fixed:
    """A random source that always draws the same number."""

    value: float

    def random(self) -> float:
        return self.value


def test_the_ceiling_doubles_from_the_base_up_to_the_cap() -> None:
    policy = Backoff(base_s=0.1, cap_s=5.0)
    assert [policy.ceiling(n) for n in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert policy.ceiling(10**9) == 5.0  # no overflow however long the outage
    assert policy.ceiling(-3) == 0.1


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999999])
def test_a_delay_is_the_draw_scaled_to_the_ceiling(draw: float) -> None:
    policy = Backoff(base_s=0.05, cap_s=2.0)
    assert [policy.delay(n, Fixed(draw)) for n in range(8)] == [
        draw * policy.ceiling(n) for n in range(8)
    ]


def test_delays_spread_over_the_whole_window_below_the_cap() -> None:
    # replicas retrying the same attempt must not all wait the same time (lockstep reconnects)
    policy, rng = Backoff(base_s=0.2, cap_s=5.0), random.Random(7)
    delays = [policy.delay(10, rng) for _ in range(2000)]
    assert all(0.0 <= d < 5.0 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 4.5
    assert len({round(d, 3) for d in delays}) > 1000


def test_the_default_source_draws_different_delays() -> None:
    policy = Backoff(base_s=1.0, cap_s=1.0)
    assert len({policy.delay(0) for _ in range(20)}) > 1


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends() -> None:
    outage = OutageLog(get_logger("test"), "redis_unavailable", "redis_recovered", stage="s")
    with capture_logs() as logs:
        outage.up()  # nothing was down: nothing to say
        for _ in range(3):
            outage.down(ConnectionError("refused"))
        assert outage.is_down
        outage.up()
        outage.up()
        outage.down(OSError("reset"))
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("redis_unavailable", "warning"),
        ("redis_recovered", "info"),
        ("redis_unavailable", "warning"),
    ]
    assert logs[0] == {
        "event": "redis_unavailable", "log_level": "warning", "stage": "s", "error": "refused",
    }  # fmt: skip
    assert logs[1] == {"event": "redis_recovered", "log_level": "info", "stage": "s"}
