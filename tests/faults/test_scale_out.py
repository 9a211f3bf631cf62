"""Fault 4: two validators and two persisters share their groups; one of each dies for good.

Distinct consumer names (``RUNBUS_CONSUMER_NAME``) in the same groups. The dead replicas are
SIGKILLed while they hold a batch and never restarted: the survivors' janitors must claim what
they held (``RUNBUS_CLAIM_IDLE_MS=1000``).
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import wait_for
from tests.faults.conftest import MakeSystem, Sizes
from tests.faults.conservation import Figures, conclude
from tests.faults.scenario import under_load
from tests.faults.system import Replica, System

pytestmark = pytest.mark.integration


def _kill_holding(system: System, replica: Replica, tries: int = 5) -> int:
    """SIGKILL the replica while it holds entries; how many it held when it died."""
    for _ in range(tries):
        system.wait_mid_batch(replica)
        replica.signal(signal.SIGKILL)
        held = system.held(replica)
        if held:
            replica.retired = True
            return held
        replica.start()  # it finished the batch just before the signal: try again
    pytest.fail(f"{replica.name} never died holding a batch")


def test_survivors_claim_what_a_dead_replica_held(
    make_system: MakeSystem, pg_url: str, sizes: Sizes, tag: str
) -> None:
    # given two validators, two persisters and a coach, under a steady load
    system = make_system(pg_url, RUNBUS_CLAIM_IDLE_MS="1000", RUNBUS_JANITOR_INTERVAL_S="0.5")
    doomed = [system.start("validator", "validator-b"), system.start("persister", "persister-b")]
    system.start("validator", "validator-a")
    system.start("persister", "persister-a")
    producer = under_load(system, tag, sizes.rate, services=("coach",))
    figures = Figures("scale-out, one replica killed", sizes.variant)
    # when one validator and one persister are SIGKILLed mid-batch and never come back
    held = {replica.name: _kill_holding(system, replica) for replica in doomed}
    began = time.monotonic()
    # then the survivors claim what the dead held, and the pipeline catches up
    wait_for(lambda: not any(system.held(r) for r in doomed), timeout=60)
    claimed_s = time.monotonic() - began
    figures.recover_s = time.monotonic() - began + system.wait_caught_up(timeout=60)
    system.assert_alive()
    producer.stop()
    assert not producer.failures, producer.failures[:3]
    figures.details |= {"held_at_death": held, "claimed_s": round(claimed_s, 2),
                        "rate": round(producer.rate)}  # fmt: skip
    # and every event is stored or dead-lettered exactly once, coach == rebuild
    conclude(system, producer.offered, figures, pg_url)
