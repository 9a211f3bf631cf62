"""The benchmark's own arithmetic and workload: what its figures rest on.

No servers: the workload must be what the issue describes (300-byte events the validator
accepts, or rejects when asked), percentiles must be the usual ones, and the report must say
"not run" rather than invent a figure for a part that did not run.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from bench import events
from bench.markdown import render, sittings
from bench.report import headline, verdicts
from bench.run import merged
from bench.stats import percentile, ratio, summary_ms
from shared.settings import Settings
from shared.taxonomy import Taxonomy
from shared.validation import Accepted, Rejected, validate_bytes


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Settings(_env_file=None).taxonomy  # type: ignore[call-arg]


def test_every_workload_event_is_about_300_bytes_and_valid(taxonomy: Taxonomy) -> None:
    # Given one event of each kind in the mix, and a latency probe
    ts = events.now_iso()
    bodies = [events.body(seq, "e-", ts) for seq in range(len(events.TEMPLATES))]
    bodies.append(events.body(7, "e-", ts, probe=True))
    for data in bodies:
        # Then each is a valid event of about 300 bytes
        assert 290 <= len(data) <= 310, len(data)
        assert isinstance(validate_bytes(data, taxonomy), Accepted), data


def test_an_invalid_event_is_rejected_for_its_reason_code(taxonomy: Taxonomy) -> None:
    result = validate_bytes(events.body(4, "d-", events.now_iso(), invalid=True), taxonomy)
    assert isinstance(result, Rejected)
    assert result.errors == ["invalid_reason_code:bench_no_such_code"]


def test_event_ids_sort_like_sequence_numbers_and_read_back() -> None:
    # The coach keeps the latest probe by (time, event id): ids must order like sequences
    ids = [events.event_id("l1k-", seq) for seq in (9, 10, 99, 100, 12345)]
    assert ids == sorted(ids)
    assert [events.seq_of("l1k-", i) for i in ids] == [9, 10, 99, 100, 12345]


def test_a_probe_belongs_to_the_probe_project_and_run() -> None:
    doc = orjson.loads(events.body(5, "l1k-", events.now_iso(), probe=True))
    assert doc["project_id"] == events.PROBE_PROJECT
    assert doc["run_id"] == "l1k-probe"
    assert doc["reason_code"] == "dataset_import_run"  # updates the coach's data:import fact


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) is None
    assert summary_ms([0.001, 0.002, 0.003])["p50_ms"] == 2.0


def test_ratio_is_none_without_both_figures() -> None:
    assert ratio(20_000, 40_000) == 0.5
    assert ratio(None, 40_000) is None
    assert ratio(20_000, None) is None


def test_a_part_that_did_not_run_is_reported_as_not_run() -> None:
    # Given only the limits and the SQLite part ran
    raw = {
        "limits": {"limit_xadd_eps": 100_000.0, "limit_consume_eps": 200_000.0},
        "sqlite": {
            "sustained": {"eps": 30_000.0, "history_eps": 30_000.0, "coach_eps": 31_000.0},
            "latency_1k": {"history": {"p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0}},
        },
    }
    head = headline(raw)
    head["targets"] = verdicts(head)
    status = {t["key"]: t["status"] for t in head["targets"]}
    # Then the figures that exist are judged, and the others are "not run", never a number
    assert head["ratio_sqlite"] == 0.3 and status["ratio_sqlite"] == "missed"
    assert status["latency_p99_ms_at_1k"] == "met"
    assert head["e2e_postgres_eps"] is None and status["ratio_postgres"] == "not run"
    assert head["run_detail_p99_ms_1m"] is None and status["run_detail_p99_ms_1m"] == "not run"
    # And the Markdown report renders with dashes for what is missing
    text = render(raw, head | {"quick": True, "machine": {}})
    assert "| Sustained SQLite >= 50% of limit 1 | 0.300 | missed |" in text
    assert "not run" in text


def test_only_some_parts_are_laid_over_the_last_run_of_the_same_kind(tmp_path: Path) -> None:
    stored = {"quick": False, "started_at": "A", "details": {"sqlite": 1, "dashboard": 2}}
    (tmp_path / "latest.json").write_text(json.dumps(stored))
    raw, when = merged({"dashboard": 3}, "B", quick=False, directory=tmp_path)
    assert raw == {"sqlite": 1, "dashboard": 3}
    assert when == {"sqlite": "A", "dashboard": "B"}
    assert sittings({"started_at": "B", "parts_measured_at": when}) == (
        " Parts from earlier runs (A): sqlite."
    )
    # a quick run never mixes with a full one
    assert merged({"dashboard": 3}, "B", quick=True, directory=tmp_path) == (
        {"dashboard": 3}, {"dashboard": "B"}
    )  # fmt: skip
