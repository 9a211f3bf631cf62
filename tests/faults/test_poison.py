"""Fault 5: an entry that fails every time it is handled (a poison entry).

Two ways to make a real service fail on one entry without a test-only path in production code:

- the history database refuses one row every time (a CHECK constraint added to the test's own
  schema): the persister isolates it by bisection and dead-letters it as ``persist_rejected``;
- the process dies on one entry every time (a test-only handler, run through the real
  `StreamWorker` in a subprocess, that ``os._exit(1)``s): restarted again and again, the worker
  dead-letters the entry as ``delivery_attempts_exceeded`` after ``RUNBUS_MAX_DELIVERIES``.

Either way the entries behind the poison keep flowing and are handled exactly once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from services.history import store_for_url
from services.history.postgres import schema_of
from shared.settings import REPO_ROOT
from tests.conftest import POSTGRES_DSN, wait_for
from tests.faults.conftest import MakeSystem, Sizes
from tests.faults.conservation import Figures, conclude, xrange_all
from tests.faults.load import poison_offer
from tests.faults.scenario import under_load
from tests.faults.system import System

pytestmark = pytest.mark.integration


async def _refuse_one_row(url: str, event_id: str) -> None:
    """Migrate the schema, then make the database refuse the row of `event_id`, every time."""
    store = store_for_url(url)
    await store.open()
    try:
        await store.migrate()
    finally:
        await store.close()
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(
            f'ALTER TABLE "{schema_of(url)}".history ADD CONSTRAINT fault_poison '
            f"CHECK (event_id <> '{event_id}')"
        )
    finally:
        await conn.close()


def _dead_letter_of(system: System, event_id: str) -> dict[bytes, bytes] | None:
    needle = f'"event_id":"{event_id}"'.encode()
    for fields in xrange_all(system.client, system.names.dead):
        if needle in fields.get(b"original", b""):
            return fields
    return None


def test_a_row_the_database_refuses_is_dead_lettered_and_the_rest_flow(
    make_system: MakeSystem, pg_url: str, sizes: Sizes, tag: str
) -> None:
    # given a history schema whose CHECK constraint refuses one event id, every time
    poison = poison_offer(f"{tag}-poison")
    asyncio.run(_refuse_one_row(pg_url, poison.event_id))
    system = make_system(pg_url)
    producer = under_load(system, tag, sizes.rate)
    figures = Figures("poison row (db refuses)", sizes.variant)
    # when that event arrives amid the steady load
    producer.inject(poison)
    began = time.monotonic()
    wait_for(lambda: _dead_letter_of(system, poison.event_id) is not None, timeout=60)
    # then it is dead-lettered, and what came behind it is stored
    figures.recover_s = time.monotonic() - began + system.wait_caught_up(timeout=60)
    system.assert_alive()
    producer.stop()
    assert not producer.failures, producer.failures[:3]
    letter = _dead_letter_of(system, poison.event_id)
    assert letter is not None and letter[b"stage"] == b"persister"
    figures.details |= {"rate": round(producer.rate), "errors": letter[b"errors"].decode()}
    dead = {poison.event_id: ("persister", "persist_rejected")}
    conclude(system, producer.offered, figures, pg_url, dead=dead)


def test_an_entry_that_kills_its_consumer_is_dead_lettered_after_n_attempts(
    make_system: MakeSystem, tmp_path: Path, sizes: Sizes, tag: str
) -> None:
    # given a validator process that dies on one entry every time (restarted whenever it
    # exits, as a supervisor would), the real persister and coach, and a cap of 3 deliveries
    max_deliveries = 3
    poison = poison_offer(f"{tag}-poison", dialect="brewslm")
    db = f"sqlite:///{tmp_path / 'history.db'}"
    system = make_system(db, RUNBUS_MAX_DELIVERIES=str(max_deliveries))
    validator = system.spawn(
        "validator", system.python("tests.faults.crashing_validator"),
        RUNBUS_FAULT_POISON=f'"event_id":"{poison.event_id}"', PYTHONPATH=str(REPO_ROOT),
    )  # fmt: skip
    producer = under_load(system, tag, sizes.rate, services=("persister", "coach"))
    figures = Figures("poison entry (process dies)", sizes.variant)
    # when the poison entry arrives amid the steady load
    producer.inject(poison)
    began = time.monotonic()
    crashes = 0

    def supervised_until_dead_lettered() -> bool:
        nonlocal crashes
        if not validator.alive:
            crashes += 1
            validator.start()
        return _dead_letter_of(system, poison.event_id) is not None

    wait_for(supervised_until_dead_lettered, timeout=120, interval=0.05)
    figures.recover_s = time.monotonic() - began + system.wait_caught_up(timeout=60)
    system.assert_alive()
    producer.stop()
    assert not producer.failures, producer.failures[:3]
    # then it crashed the consumer once per allowed delivery, and was dead-lettered after that
    letter = _dead_letter_of(system, poison.event_id)
    assert letter is not None
    assert letter[b"errors"] == b'["delivery_attempts_exceeded"]'
    assert int(letter[b"delivery_count"]) == max_deliveries + 1
    assert crashes == max_deliveries
    figures.details |= {"rate": round(producer.rate), "crashes": crashes,
                        "max_deliveries": max_deliveries}  # fmt: skip
    # and every other event was handled exactly once
    dead = {poison.event_id: ("validator", "delivery_attempts_exceeded")}
    conclude(system, producer.offered, figures, db, dead=dead)
