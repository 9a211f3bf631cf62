"""`runbus history family RUN` on both stores: the chain and the children, as a tree or JSON."""

from __future__ import annotations

import orjson
import pytest

from tests.integration.history.test_cli import runbus, seed

pytestmark = pytest.mark.integration


def test_history_family_prints_the_chain_and_children(backend_url: str) -> None:
    # Given exp-1 -> run-2 -> exp-3 (seeded by the history CLI stories)
    seed(backend_url)
    # When the middle run's family is asked for as JSON, and as a tree
    doc = orjson.loads(runbus(backend_url, "history", "family", "run-2", "--json").output)
    tree = runbus(backend_url, "history", "family", "run-2")
    # Then the JSON is the API's body, and the tree reads root first, the run, its children
    assert [a["run_id"] for a in doc["ancestors"]] == ["exp-1"]
    assert [c["run_id"] for c in doc["children"]] == ["exp-3"]
    assert tree.exit_code == 0, tree.output
    lines = tree.output.splitlines()
    assert [line.lstrip("└─│ ").split()[0] for line in lines] == ["exp-1", "run-2", "exp-3"]
    assert lines[0].startswith("exp-1") and "2026-03-01 12:00:00 .. 2026-03-01 12:00:03" in lines[0]


def test_history_family_of_an_unknown_run_is_one_line_and_exit_1(backend_url: str) -> None:
    seed(backend_url)
    result = runbus(backend_url, "history", "family", "nobody")
    assert result.exit_code == 1
    assert result.output.strip() == "error: run_not_found: no run nobody"
