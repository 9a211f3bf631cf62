"""Fault 3: the history database (a private PostgreSQL cluster) stops, then starts again.

The machine's PostgreSQL is never touched: the persister writes to a cluster of the test's own
(the history tests' `postgres_server`), which is stopped the hard way (``pg_ctl -m immediate``).
"""

from __future__ import annotations

import threading

import pytest

from tests.faults.conftest import MakeSystem, PostgresServer, Sizes
from tests.faults.conservation import Figures, conclude
from tests.faults.scenario import under_load

pytestmark = pytest.mark.integration


def test_postgres_stopped_then_started_loses_nothing(
    make_system: MakeSystem, postgres_server: PostgresServer, sizes: Sizes, tag: str
) -> None:
    # given the pipeline with its history on a private PostgreSQL, under a steady load; the
    # janitor is eager (1 s), so entries held through the outage must not look abandoned
    db = f"{postgres_server.url}?search_path=runbus"
    system = make_system(db, RUNBUS_CLAIM_IDLE_MS="1000", RUNBUS_JANITOR_INTERVAL_S="0.5")
    producer = under_load(system, tag, sizes.rate)
    figures = Figures("postgres down+up", sizes.variant)
    # when PostgreSQL crashes and stays down
    postgres_server.stop()
    threading.Event().wait(sizes.postgres_down_s)  # the outage itself, not a synchronisation
    # then the rest of the pipeline kept flowing meanwhile (validator and coach caught up) ...
    system.wait_caught_up(("validator", "coach"), timeout=30)
    backlog = system.group("persister")
    assert backlog is not None and backlog.pending > 0, "the persister was not held up at all"
    # ... and once it is back, the persister catches up by itself
    postgres_server.start()
    figures.recover_s = system.wait_caught_up(timeout=120)
    system.assert_alive()
    producer.stop()
    assert not producer.failures, producer.failures[:3]
    figures.details |= {
        "down_s": sizes.postgres_down_s, "rate": round(producer.rate),
        "persister_pending_during_outage": backlog.pending,
    }  # fmt: skip
    # and every event is stored or dead-lettered exactly once (no delivery attempt was burnt)
    conclude(system, producer.offered, figures, db)
