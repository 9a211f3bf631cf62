"""`runbus taxonomy`: the whole taxonomy and its version, as JSON or as tables."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from services.cli.main import app
from shared.taxonomy import SEED_TAXONOMY
from tests.unit.contract import expected


def test_taxonomy_json_prints_the_version_and_every_code_and_type() -> None:
    result = CliRunner().invoke(app, ["taxonomy", "--json"], env={"RUNBUS_EXTRA_CODES_FILE": None})
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] == SEED_TAXONOMY.version
    assert doc["stages"] == list(expected.SEED_STAGES)
    assert doc["severities"] == list(expected.SEED_SEVERITIES)
    assert doc["cross_stage_policy"] == "reject"
    assert {
        stage: [(row["code"], row["info_only"]) for row in rows]
        for stage, rows in doc["reason_codes"].items()
    } == expected.SEED_REASON_CODES
    assert doc["pulse_event_types"] == expected.SEED_PULSE_TYPES


def test_taxonomy_follows_the_settings(tmp_path: Path) -> None:
    extra = tmp_path / "codes.json"
    extra.write_text(
        json.dumps({"reason_codes": [{"code": "training_nan_loss", "stage": "training"}]}),
        encoding="utf-8",
    )
    env = {"RUNBUS_EXTRA_CODES_FILE": str(extra), "RUNBUS_CROSS_STAGE_REASON_CODES": "accept"}
    result = CliRunner().invoke(app, ["taxonomy", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["version"] != SEED_TAXONOMY.version
    assert doc["cross_stage_policy"] == "accept"
    assert "training_nan_loss" in [row["code"] for row in doc["reason_codes"]["training"]]


def test_taxonomy_tables_list_every_code_and_type() -> None:
    result = CliRunner().invoke(
        app, ["taxonomy"], env={"COLUMNS": "200", "RUNBUS_EXTRA_CODES_FILE": None}
    )
    assert result.exit_code == 0, result.output
    assert f"taxonomy {SEED_TAXONOMY.version}" in result.stdout
    missing = [c for _, c, _ in expected.SEED_CODE_ROWS if c not in result.stdout]
    missing += [t for t in expected.SEED_PULSE_TYPES if t not in result.stdout]
    assert missing == []
