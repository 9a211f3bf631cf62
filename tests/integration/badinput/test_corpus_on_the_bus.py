"""The whole bad-input corpus through the real validator on the real Redis.

Story: a hostile (or merely broken) set of producers sends every case of the corpus at once.
The validator must keep running, put each entry on exactly one of the valid and dead-letter
streams, give every rejection a documented code, keep valid text verbatim and rejected
entries byte for byte, and still accept a plain event afterwards.
"""

from __future__ import annotations

import uuid

import orjson
import pytest

from shared.consumer import ATTEMPTS_EXCEEDED
from shared.wire import DATA_FIELD
from tests.integration.badinput.conftest import ValidatorBus
from tests.unit.badinput.checks import check_dead, check_valid, families
from tests.unit.badinput.corpus import corpus, event

pytestmark = pytest.mark.integration


def assert_still_accepts(bus: ValidatorBus) -> None:
    """A plain event sent now reaches the valid stream: the validator kept going."""
    marker = f"sentinel-{uuid.uuid4().hex}"
    (sentinel,) = bus.send([{DATA_FIELD: orjson.dumps(event(run_id=marker))}])
    bus.wait_accounted([sentinel], timeout=20)
    assert bus.valid[sentinel].event["run_id"] == marker


def test_every_corpus_entry_is_accounted_for_once_with_its_verdict(bus: ValidatorBus) -> None:
    # Given the corpus, every case sent twice (a producer retrying the whole lot)
    cases = corpus() * 2
    # When it is all sent at once
    ids = bus.send(case.fields for case in cases)
    bus.wait_accounted(ids)
    # Then each entry is on exactly one stream (collect() fails on any id seen twice) ...
    assert len(bus.valid) + len(bus.dead) == len(ids) == bus.sent
    assert not bus.valid.keys() & bus.dead.keys()
    # ... with the verdict of its case, and the invariants of valid and rejected entries
    wrong = []
    for case, entry_id in zip(cases, ids, strict=True):
        if entry_id in bus.valid:
            check_valid(case.fields, bus.valid[entry_id])
        else:
            check_dead(case.fields, bus.dead[entry_id], entry_id)
            if case.family:
                assert case.family in families(bus.dead[entry_id].errors), case.name
        where = "valid" if entry_id in bus.valid else "dead"
        if where != case.expect:
            wrong.append(case.name)
    assert wrong == []
    # And nothing was dead-lettered because the validator crashed on it
    assert not [d for d in bus.dead.values() if ATTEMPTS_EXCEEDED in d.errors]
    # And the validator still accepts a plain event
    assert_still_accepts(bus)


def test_duplicated_event_ids_all_pass_the_validator(bus: ValidatorBus) -> None:
    # Given the same event (same event id) sent five times
    body = {DATA_FIELD: orjson.dumps(event(event_id="dup-7"))}
    ids = bus.send([body] * 5)
    bus.wait_accounted(ids)
    # Then the validator forwards all five (the history, unique on the id, keeps one)
    assert [bus.valid[i].event_id for i in ids] == ["dup-7"] * 5
