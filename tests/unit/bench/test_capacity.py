"""The capacity model's arithmetic: processes, shards and the first bottleneck from measured inputs.

No servers: the inputs are given, as a run's raw results would hold them, and every figure of
the model must follow from them by the documented rules (one core per process, ceilings
rounded up, the lower of the two shard ceilings, PostgreSQL before a hot project).
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import capacity
from bench.capacity import Inputs, at, inputs_from, model
from bench.markdown import render
from bench.scale_report import headline, partition_cost
from shared.pipeline import PIPELINE

CPU = {"validator": 50.0, "persister": 100.0, "coach": 25.0}


def _inputs(**changes: Any) -> Inputs:
    given: dict[str, Any] = {
        "stage_cpu_us": CPU,
        "producer_eps": 40_000.0,
        "shard_limit_xadd_eps": 80_000.0,
        "redis_us_per_event": 40.0,
        "postgres_us_per_row": 20.0,
        "postgres_ingest_eps": 9_000.0,
        "hot_project_eps": 7_000.0,
        "dlq_scan_eps": 100_000.0,
    }
    return Inputs(**(given | changes))


def _run(partitions: int, eps: float, cpu: dict[str, float]) -> dict[str, Any]:
    return {"partitions": partitions, "eps": eps, "coach_eps": eps, "history_eps": eps,
            "cpu_us_per_event": cpu}  # fmt: skip


def _raw() -> dict[str, Any]:
    small = {s: 2 * v for s, v in CPU.items()} | {"redis": 90.0, "postgres": 30.0}
    large = CPU | {"redis": 40.0, "postgres": 20.0}
    return {
        "cluster": {
            "shard_limit_xadd_eps": 80_000,
            "producer_cluster_eps": 40_000,
            "node": [_run(1, 7_000, small), _run(4, 8_000, small)],
            "cluster": [_run(12, 5_000, large), _run(3, 4_000, small)],
        },
        "dead_letter_reads": {"dead_letters": 10_000, "stats_s": 0.1},
    }


def test_the_model_sizes_each_stage_by_its_cpu_per_event_one_core_each() -> None:
    # Given 50 / 100 / 25 µs per event, a 40k/s producer, shards of min(80k, 1e6/40 µs) = 25k/s
    doc = at(_inputs(), 100_000)
    # Then 100k/s needs 5 / 10 / 3 processes (2.5 rounds up), 3 producers and 4 shards
    assert doc["processes"] == {"validator": 5, "persister": 10, "coach": 3}
    assert (doc["producers"], doc["redis_shards"]) == (3, 4)
    assert doc["partitions"] == 4 * capacity.PARTITIONS_PER_SHARD
    assert doc["cores"] == 5 + 10 + 3 + 3 + 4
    # And PostgreSQL needs 2 cores; a `dlq stats` over an hour of 1% invalid scans 3600k / 100k/s
    assert doc["postgres_cores"] == 2.0
    assert doc["dlq_stats_s_per_hour"] == 36.0


def test_the_first_bottleneck_is_a_hot_project_until_postgres_is_above_its_ceiling() -> None:
    inputs = _inputs()
    # Given one 16-core primary at 20 µs/row: 800k rows/s
    assert inputs.postgres_ceiling_eps == pytest.approx(capacity.POSTGRES_CORES * 50_000)
    # Then at 100k/s what more processes cannot lift is one project's coach rate
    assert at(inputs, 100_000)["first_bottleneck"]["name"] == "hot_project"
    assert at(inputs, 100_000)["first_bottleneck"]["ceiling_eps"] == 7_000
    # And at 1M/s PostgreSQL is
    assert at(inputs, 1_000_000)["first_bottleneck"] == {
        "name": "postgresql",
        "ceiling_eps": 800_000,
        "why": at(inputs, 1_000_000)["first_bottleneck"]["why"],
    }


def test_a_shard_is_bounded_by_limit_1_when_redis_cpu_was_not_measured() -> None:
    assert _inputs(redis_us_per_event=None).shard_eps == 80_000
    assert _inputs(redis_us_per_event=5.0).shard_eps == 80_000  # 200k by CPU, 80k by limit 1
    assert _inputs().shard_eps == 25_000


def test_the_inputs_are_the_lowest_cpu_of_the_cluster_runs_and_the_p1_node_coach_rate() -> None:
    inputs = inputs_from(_raw())
    assert inputs is not None
    # Then each CPU figure is the lowest of the cluster runs, the hot project the P=1 coach rate
    assert inputs.stage_cpu_us == CPU
    assert (inputs.redis_us_per_event, inputs.postgres_us_per_row) == (40.0, 20.0)
    assert inputs.hot_project_eps == 7_000
    assert inputs.postgres_ingest_eps == 5_000
    assert inputs.dlq_scan_eps == pytest.approx(100_000)
    assert list(inputs.stage_cpu_us) == list(PIPELINE.stage_names)


def test_no_cluster_part_means_no_model_and_no_table() -> None:
    assert model({}) is None
    text = render({}, {"capacity_model": None})
    assert "Capacity model" not in text
    assert headline({})["e2e_cluster_eps"] is None


def test_the_model_is_in_the_report_at_both_rates() -> None:
    doc = model(_raw())
    assert doc is not None
    assert doc["at_100k"]["target_eps"] == 100_000 and doc["at_1m"]["target_eps"] == 1_000_000
    assert doc["inputs"]["shard_eps"] == 25_000
    text = render(_raw(), {"capacity_model": doc})
    assert "| 100k ev/s | 5 / 10 / 3 | 3 | 4 (16 partitions) | 25 |" in text
    assert "| 3+3 cluster, P=12 | 5,000 |" in text


def test_the_cost_of_one_more_partition_is_the_cpu_slope_from_fewest_to_most() -> None:
    # Given stages spending 175 µs/event at P=3 and 184 at P=12 (listed out of order)
    runs = [_run(12, 1, {"validator": 54.0, "persister": 105.0, "coach": 25.0}), _run(3, 1, CPU)]
    # Then one more partition costs (184 - 175) / 9 = 1 µs per event
    assert partition_cost(runs) == 1.0
    # And one run, or runs without CPU figures, give no slope
    assert partition_cost(runs[:1]) is None
    assert partition_cost([_run(3, 1, {}), _run(12, 1, {})]) is None
