"""Pure decisions of the supervisor: children, backoff, banner, which Redis URLs it may start."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import pytest

from services.runtime.logic import (
    RESTART_BACKOFF,
    backoff_s,
    banner,
    child_command,
    children,
    display_host,
    is_loopback_redis,
    next_failures,
    redact,
    redis_port,
)


@dataclass
class Fixed:
    """A random source that always draws the same number."""

    value: float

    def random(self) -> float:
        return self.value


def test_run_all_starts_one_process_per_service_with_this_interpreter() -> None:
    specs = children()
    assert [s.name for s in specs] == ["validator", "persister", "coach", "api"]
    assert specs[0].argv == (sys.executable, "-m", "services.cli", "run", "validator")


def test_several_validators_get_distinct_slots() -> None:
    specs = children(3, api=False)
    assert [s.name for s in specs] == ["validator-0", "validator-1", "validator-2",
                                       "persister", "coach"]  # fmt: skip
    assert specs[2].argv[-2:] == ("--slot", "2")
    assert child_command("coach") == (sys.executable, "-m", "services.cli", "run", "coach")


def test_several_api_workers_are_slotted_children_of_run_all() -> None:
    specs = children(api_workers=2)
    assert [s.name for s in specs] == ["validator", "persister", "coach", "api-0", "api-1"]
    assert specs[-1].argv == (sys.executable, "-m", "services.cli", "run", "api", "--slot", "1")


def test_backoff_doubles_up_to_a_cap_and_resets_after_a_stable_run() -> None:
    # the ceiling doubles per crash in a row up to its cap; each delay is jittered below it
    ceilings = [RESTART_BACKOFF.ceiling(n - 1) for n in (1, 2, 3, 4, 50)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 30.0]
    assert [backoff_s(n, Fixed(0.5)) for n in (1, 2, 3, 4, 50)] == [c / 2 for c in ceilings]
    rng = random.Random(3)
    assert all(0 <= backoff_s(n, rng) < 30.0 for n in range(1, 60) for _ in range(20))
    assert next_failures(3, uptime_s=2.0) == 4
    assert next_failures(3, uptime_s=120.0) == 1


def test_banner_says_where_the_api_and_docs_are() -> None:
    lines = banner("0.0.0.0", 8000, "redis://:pw@127.0.0.1:6379/0", "sqlite:///var/h.db")
    text = "\n".join(lines)
    assert "http://127.0.0.1:8000/docs" in text and "http://127.0.0.1:8000/asyncapi" in text
    assert "  dashboard http://127.0.0.1:8000/ui" in lines
    assert "pw" not in text and "***" in text
    assert display_host("10.0.0.5") == "10.0.0.5"


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("redis://127.0.0.1:6379/0", True),
        ("redis://localhost", True),
        ("redis://[::1]:6390", True),
        ("rediss://127.0.0.1:6379", False),
        ("redis://cache.internal:6379", False),
    ],
)
def test_only_plain_loopback_urls_may_get_a_local_server(url: str, local: bool) -> None:
    assert is_loopback_redis(url) is local


def test_url_helpers() -> None:
    assert redis_port("redis://127.0.0.1/0") == 6379
    assert redis_port("redis://127.0.0.1:7001/0") == 7001
    assert redact("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"
    assert redact("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
