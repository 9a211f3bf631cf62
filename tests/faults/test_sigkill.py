"""Fault 1: every service SIGKILLed mid-batch, again and again, while events keep coming."""

from __future__ import annotations

import signal
import statistics
import time

import pytest

from tests.faults.conftest import MakeSystem, Sizes
from tests.faults.conservation import Figures, conclude
from tests.faults.scenario import SERVICES, under_load

pytestmark = pytest.mark.integration


def test_sigkill_of_each_service_mid_batch_loses_and_duplicates_nothing(
    make_system: MakeSystem, pg_url: str, sizes: Sizes, tag: str
) -> None:
    # given the three services as processes (PostgreSQL history) under a steady mixed load
    system = make_system(pg_url)
    producer = under_load(system, tag, sizes.rate)
    figures = Figures("sigkill each service", sizes.variant)
    recover: list[float] = []
    # when each service in turn is SIGKILLed while it holds a batch, and restarted at once
    # (a kill that lands just after the batch was acknowledged does not count: kill again)
    for service in SERVICES:
        replica = system.replicas[f"{service}-0"]
        held: list[int] = []
        resume: list[float] = []
        while sum(1 for h in held if h) < sizes.kills_per_service:
            assert len(held) < 3 * sizes.kills_per_service, f"{service}: too few mid-batch kills"
            waited = time.monotonic()
            system.wait_mid_batch(replica)
            resume.append(time.monotonic() - waited)
            replica.signal(signal.SIGKILL)
            held.append(system.held(replica))  # what it had in hand when it died (may be 0)
            replica.start()
        recover.append(system.wait_caught_up(timeout=90))
        figures.details[service] = {
            "kills": len(held), "mid_batch": sum(1 for h in held if h), "held_max": max(held),
            "resume_s_median": round(statistics.median(resume), 2),
            "recover_s": round(recover[-1], 2),
        }  # fmt: skip
        system.assert_alive()
    producer.stop()
    assert not producer.failures, producer.failures[:3]
    # then every event is stored or dead-lettered exactly once, nothing pending, coach == rebuild
    figures.recover_s = max(recover)
    figures.details["rate"] = round(producer.rate)
    conclude(system, producer.offered, figures, pg_url)
