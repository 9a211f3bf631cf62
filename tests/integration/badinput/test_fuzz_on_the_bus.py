"""Generated hostile entries through the real validator on the real Redis.

Two generators: hypothesis draws entries one by one (`strategies.entries`), and hypothesis
draws recipes for the seeded mutation fuzzer (`mutate.mutants`), which is what gives volume.
Default (``make test``): about two thousand entries. The long variant is marked ``slow``: at
least 10 000 entries, and at least 100 000 with ``RUNBUS_FUZZ_FULL=1`` (``make test-fuzz``).
Each example is sent in one pipeline; every entry must be accounted for once, with the
invariants of `tests.unit.badinput.checks`, before the next example.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.consumer import ATTEMPTS_EXCEEDED
from tests.integration.badinput.conftest import Fields, ValidatorBus
from tests.integration.badinput.test_corpus_on_the_bus import assert_still_accepts
from tests.unit.badinput.checks import check_dead, check_valid
from tests.unit.badinput.mutate import mutants
from tests.unit.badinput.strategies import FULL, entries, recipes

pytestmark = [pytest.mark.integration]
#: Entries the long variant sends through the validator (the full run: at least 100k).
LONG_MINIMUM = 100_000 if FULL else 10_000
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


def through_the_bus(bus: ValidatorBus, batch: list[Fields]) -> None:
    """Send a batch; each entry ends on exactly one stream, with its invariants."""
    ids = bus.send(batch)
    bus.wait_accounted(ids)
    for fields, entry_id in zip(batch, ids, strict=True):
        if entry_id in bus.valid:
            check_valid(fields, bus.valid[entry_id])
        else:
            check_dead(fields, bus.dead[entry_id], entry_id)
            assert ATTEMPTS_EXCEEDED not in bus.dead[entry_id].errors


def fuzz_entries(bus: ValidatorBus, max_examples: int) -> Callable[[], None]:
    """Hypothesis-drawn entries, up to 25 per example."""

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=HEALTH)
    @given(batch=st.lists(entries(), min_size=1, max_size=25))
    def run(batch: list[Fields]) -> None:
        through_the_bus(bus, batch)

    return run


def fuzz_recipes(bus: ValidatorBus, max_examples: int, size: int) -> Callable[[], None]:
    """Hypothesis-drawn mutation recipes, `size` entries each."""

    @settings(max_examples=max_examples, deadline=None, suppress_health_check=HEALTH)
    @given(recipe=recipes)
    def run(recipe: tuple[int, list[str]]) -> None:
        through_the_bus(bus, mutants(recipe[0], size, recipe[1]))

    return run


def assert_all_accounted(bus: ValidatorBus) -> None:
    bus.collect()
    assert len(bus.valid) + len(bus.dead) == bus.sent
    assert bus.valid and bus.dead, "the generators must produce both verdicts"
    assert_still_accepts(bus)
    # The figures of the run (shown with pytest -s)
    print(f"\nfuzz: {bus.sent} entries, {len(bus.valid)} valid, {len(bus.dead)} dead-lettered")


def test_generated_entries_are_all_accounted_for(bus: ValidatorBus) -> None:
    # Given the real validator, when hypothesis sends its entries and its mutation recipes
    fuzz_entries(bus, 30)()
    fuzz_recipes(bus, 10, 200)()
    # Then every entry sent is on exactly one of the two streams, and the validator still runs
    assert bus.sent > 2_000
    assert_all_accounted(bus)


@pytest.mark.slow
def test_long_fuzz_run_accounts_for_every_generated_entry(bus: ValidatorBus) -> None:
    # Given the long run: drawn entries, then mutation recipes until LONG_MINIMUM entries
    fuzz_entries(bus, 300)()
    while bus.sent < LONG_MINIMUM:
        fuzz_recipes(bus, max(1, (LONG_MINIMUM - bus.sent) // 1_000 + 1), 1_000)()
    # Then all were accounted for, and the validator still accepts a plain event
    assert bus.sent >= LONG_MINIMUM
    assert_all_accounted(bus)
