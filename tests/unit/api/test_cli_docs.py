"""`runbus docs asyncapi` writes the same document the API serves."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app


def test_docs_asyncapi_writes_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBUS_NAMESPACE", "docs1")
    monkeypatch.chdir(tmp_path)  # no .env from the repo
    out = tmp_path / "out" / "asyncapi.json"
    result = CliRunner().invoke(app, ["docs", "asyncapi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(out.read_bytes())
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["incoming"]["address"] == "{docs1}:events"


def test_docs_asyncapi_prints_to_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["docs", "asyncapi"])
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["info"]["title"] == "runbus streams"
