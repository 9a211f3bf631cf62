"""Contract: the taxonomy holds every seed code and Pulse type, with the seed's flags.

The expected lists live in `expected.py`, copied from the seeds by hand; the naming conventions
are re-stated here as independent regexes rather than imported from the module under test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from shared.taxonomy import (
    CODE_REQUIRED_SEVERITIES,
    PULSE_SEVERITIES,
    SEED_TAXONOMY,
    SEVERITIES,
    STAGES,
    ReasonCode,
    TaxonomyError,
    build_taxonomy,
    load_taxonomy,
)
from tests.unit.contract import expected

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PULSE_TYPE = re.compile(r"^(run|stage|schedule|lease)(\.[a-z][a-z0-9]*(_[a-z0-9]+)*)+$")


# --- every seed entry is present, with the right flag -------------------------------------


def test_stages_and_severities_are_the_seeds() -> None:
    assert STAGES == expected.SEED_STAGES
    assert SEVERITIES == expected.SEED_SEVERITIES
    assert PULSE_SEVERITIES == expected.PULSE_SEVERITIES
    assert frozenset({"error", "critical"}) == CODE_REQUIRED_SEVERITIES


@pytest.mark.parametrize(("stage", "code", "info_only"), expected.SEED_CODE_ROWS)
def test_every_seed_reason_code_is_in_its_stage(stage: str, code: str, info_only: bool) -> None:
    rc = SEED_TAXONOMY.reason_codes[code]
    assert rc.stage == stage
    assert rc.info_only is info_only
    assert rc.description


def test_the_seed_taxonomy_has_exactly_the_seed_codes_grouped_by_stage() -> None:
    grouped = {
        stage: [(rc.code, rc.info_only) for rc in codes]
        for stage, codes in SEED_TAXONOMY.codes_by_stage().items()
    }
    assert grouped == expected.SEED_REASON_CODES
    assert len(SEED_TAXONOMY.reason_codes) == 35


@pytest.mark.parametrize(("event_type", "severity"), expected.SEED_PULSE_TYPES.items())
def test_every_pulse_type_has_its_catalog_severity(event_type: str, severity: str) -> None:
    assert SEED_TAXONOMY.pulse_types[event_type] == severity


def test_the_pulse_catalog_is_exactly_the_seeds() -> None:
    assert dict(SEED_TAXONOMY.pulse_types) == expected.SEED_PULSE_TYPES
    assert len(SEED_TAXONOMY.pulse_types) == 20


def test_as_dict_lists_every_code_and_type_with_the_version() -> None:
    doc = SEED_TAXONOMY.as_dict()
    assert doc["version"] == SEED_TAXONOMY.version
    listed = {
        (s, row["code"], row["info_only"])
        for s, rows in doc["reason_codes"].items()
        for row in rows
    }
    assert listed == set(expected.SEED_CODE_ROWS)
    assert doc["pulse_event_types"] == expected.SEED_PULSE_TYPES
    json.dumps(doc)  # JSON-ready as documented


# --- naming conventions and uniqueness ----------------------------------------------------


def test_every_code_in_force_is_snake_case_and_unique() -> None:
    codes = [rc.code for rc in SEED_TAXONOMY.reason_codes.values()]
    assert len(codes) == len(set(codes))
    assert [c for c in codes if not SNAKE_CASE.match(c)] == []


def test_every_pulse_type_in_force_follows_the_dot_namespace_convention() -> None:
    assert [t for t in SEED_TAXONOMY.pulse_types if not PULSE_TYPE.match(t)] == []


@pytest.mark.parametrize("code", ["training_oom", "dataset_import_run", "system_db_error"])
def test_a_duplicated_code_is_refused_even_in_another_stage(code: str) -> None:
    with pytest.raises(TaxonomyError, match="duplicate"):
        build_taxonomy([ReasonCode(code, "eval", "again")])


def test_a_code_duplicated_within_the_extension_is_refused() -> None:
    twice = [ReasonCode("training_nan_loss", "training", "x")] * 2
    with pytest.raises(TaxonomyError, match="duplicate"):
        build_taxonomy(twice)


@pytest.mark.parametrize(
    "code",
    [
        "TrainingOom",
        "training-oom",
        "training oom",
        "_training",
        "training__oom",
        "training_",
        "9lives",
        "",
        "trainingOOM",
        "tráining",
    ],
)
def test_a_code_that_is_not_snake_case_is_refused(code: str) -> None:
    assert not SNAKE_CASE.match(code)
    with pytest.raises(TaxonomyError, match="snake_case"):
        build_taxonomy([ReasonCode(code, "training", "bad name")])


@pytest.mark.parametrize(
    "event_type",
    [
        "run",
        "Run.completed",
        "run.Completed",
        "run..completed",
        "run.completed.",
        ".run.x",
        "job.completed",
        "run-completed",
        "run.complete-d",
        "run.2fast",
        "runs.completed",
        "run/completed",
        "stage_completed",
    ],
)
def test_a_pulse_type_breaking_the_convention_is_refused(event_type: str) -> None:
    assert not PULSE_TYPE.match(event_type)
    with pytest.raises(TaxonomyError, match="dot-namespace"):
        build_taxonomy(extra_pulse_types={event_type: "info"})


def test_a_duplicated_pulse_type_or_unknown_severity_is_refused() -> None:
    with pytest.raises(TaxonomyError, match="duplicate"):
        build_taxonomy(extra_pulse_types={"run.completed": "info"})
    with pytest.raises(TaxonomyError, match="severity"):
        build_taxonomy(extra_pulse_types={"run.paused": "warning"})


def test_a_code_of_an_unknown_stage_is_refused() -> None:
    with pytest.raises(TaxonomyError, match="unknown stage"):
        build_taxonomy([ReasonCode("gold_set_thin", "gold_set", "coach stage, not a RunEvent")])


def test_well_formed_extensions_are_accepted() -> None:
    tax = build_taxonomy(
        [ReasonCode("training_nan_loss", "training", "loss became NaN")],
        {"run.paused": "info", "lease.renewed.late": "warn"},
    )
    assert tax.reason_codes["training_nan_loss"].stage == "training"
    assert tax.pulse_types["lease.renewed.late"] == "warn"


# --- the version ------------------------------------------------------------------------


def _extra_file(tmp_path: Path, doc: Mapping[str, object]) -> Path:
    path = tmp_path / "extra-codes.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_the_version_is_stable_for_the_same_content(tmp_path: Path) -> None:
    assert load_taxonomy().version == SEED_TAXONOMY.version == build_taxonomy().version
    assert re.fullmatch(r"tx-[0-9a-f]{12}", SEED_TAXONOMY.version)
    doc = {"reason_codes": [{"code": "training_nan_loss", "stage": "training"}]}
    assert (
        load_taxonomy(_extra_file(tmp_path, doc)).version
        == build_taxonomy([ReasonCode("training_nan_loss", "training", "any description")]).version
    )


def test_the_version_changes_when_a_code_or_type_is_added(tmp_path: Path) -> None:
    code = {
        "reason_codes": [
            {
                "code": "training_nan_loss",
                "stage": "training",
                "description": "loss became NaN",
                "info_only": False,
            }
        ]
    }
    with_code = load_taxonomy(_extra_file(tmp_path, code))
    assert "training_nan_loss" in with_code.reason_codes
    assert with_code.version != SEED_TAXONOMY.version
    with_type = load_taxonomy(_extra_file(tmp_path, {"pulse_event_types": {"run.paused": "info"}}))
    assert with_type.pulse_types["run.paused"] == "info"
    assert len({SEED_TAXONOMY.version, with_code.version, with_type.version}) == 3


def test_the_version_covers_flags_stages_and_the_cross_stage_policy() -> None:
    as_info = build_taxonomy([ReasonCode("training_nan_loss", "training", "", True)])
    as_error = build_taxonomy([ReasonCode("training_nan_loss", "training", "", False)])
    in_eval = build_taxonomy([ReasonCode("training_nan_loss", "eval", "", False)])
    accepting = build_taxonomy(cross_stage_policy="accept")
    versions = {as_info.version, as_error.version, in_eval.version, accepting.version}
    assert len(versions | {SEED_TAXONOMY.version}) == 5


def test_a_bad_extension_file_fails_loudly(tmp_path: Path) -> None:
    doc = {"reason_codes": [{"code": "Training-NaN", "stage": "training"}]}
    with pytest.raises(TaxonomyError):
        load_taxonomy(_extra_file(tmp_path, doc))
