"""Partition names and routing: deterministic, documented, and the default unchanged."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from shared.names import CLUSTER_SLOTS, Names, StreamKind, partition_of
from shared.wire import derived_event_id


def test_one_partition_keeps_the_single_partition_names() -> None:
    names = Names("runbus")
    assert (names.events, names.valid, names.dead) == (
        "{runbus}:events", "{runbus}:valid", "{runbus}:dead",
    )  # fmt: skip
    assert names.streams(StreamKind.EVENTS) == ("{runbus}:events",)


def test_each_partition_owns_the_middle_of_its_slice_of_the_slots() -> None:
    names = Names("runbus", 12)
    width = CLUSTER_SLOTS / 12
    for partition in names.all_partitions:
        slot = key_slot(partition.events.encode())
        assert (partition.index + 0.25) * width <= slot < (partition.index + 0.75) * width
        assert partition.tag.startswith("{runbus.") and partition.tag.endswith("}")


def test_tags_are_the_same_in_every_process() -> None:
    assert Names("runbus", 12).partition(3).events == "{runbus.3.2}:events"


def test_partition_of_is_crc32_of_the_run_id_modulo_p() -> None:
    # the documented rule, as any language computes it
    assert partition_of("exp-42", 12) == zlib.crc32(b"exp-42") % 12
    assert partition_of(None, 12) == 0
    assert partition_of("", 12) == 0
    assert partition_of("exp-42", 1) == 0


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=64))
def test_every_run_id_maps_to_a_partition(run_id: str, partitions: int) -> None:
    assert 0 <= Names("ns", partitions).partition_for(run_id).index < partitions


def test_partition_counts_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        Names("ns", 0)
    with pytest.raises(IndexError):
        Names("ns", 4).partition(4)


def test_a_derived_event_id_names_its_partition_only_on_a_partitioned_bus() -> None:
    # entry ids repeat across partitions' streams; one partition keeps the old ids
    assert derived_event_id("1700000000000-0") == "evt-1700000000000-0"
    assert derived_event_id("1700000000000-0", 3) == "evt-3:1700000000000-0"
    assert derived_event_id("1-0", 3) != derived_event_id("1-0", 4)


def test_a_copy_of_the_settings_derives_its_names_again() -> None:
    from shared.settings import Settings

    settings = Settings(namespace="copy")
    assert settings.names.partitions == 1  # cached on the original
    copy = settings.model_copy(update={"partitions": 4, "namespace": "other"})
    assert (copy.names.namespace, copy.names.partitions) == ("other", 4)
    assert settings.names.partitions == 1
