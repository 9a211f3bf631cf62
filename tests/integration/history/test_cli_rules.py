"""`runbus history` applies the API's parameter rules (services.history.params): unknown runs,
bad enums and bad page sizes are refused the same way on both surfaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.history.test_cli import runbus, seed

pytestmark = pytest.mark.integration


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A seeded SQLite history."""
    url = f"sqlite:///{tmp_path / 'history.db'}"
    seed(url)
    return url


def test_an_unknown_run_is_run_not_found(url: str) -> None:
    # When a run nobody wrote is read (whole, or one page)
    for args in (("nobody",), ("nobody", "--limit", "5")):
        result = runbus(url, "history", "run", *args)
        # Then one line with the API's code, and a failing exit status
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == "error: run_not_found: no run nobody"


def test_an_unknown_project_is_project_not_found(url: str) -> None:
    result = runbus(url, "history", "project", "424242")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: project_not_found: no project 424242"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("project", "7", "--stage", "bogus"), "invalid_parameter: stage must be one of"),
        (("project", "7", "--severity", "bogus"), "invalid_parameter: severity must be one of"),
        (("project", "7", "--event-type", "run.bogus"), "invalid_parameter: event_type must"),
        (("project", "7", "--limit", "0"), "invalid_parameter: limit must be between 1 and"),
        (("project", "7", "--limit=-5"), "invalid_parameter: limit must be between 1 and"),
        (("run", "exp-1", "--limit", "0"), "invalid_parameter: limit must be between 1 and"),
        (("run", "exp-1", "--limit=-5"), "invalid_parameter: limit must be between 1 and"),
        (("run", "exp-1", "--limit", "5001"), "invalid_parameter: limit must be between 1 and"),
        (("run", "exp-1", "--cursor", "nope"), "invalid_cursor: invalid cursor"),
        (
            ("family", "exp-1", "--limit", "0"),
            "invalid_parameter: limit must be between 1 and 1000",
        ),
        (("family", "exp-1", "--limit", "1001"), "invalid_parameter: limit must be between 1 and"),
    ],
)
def test_parameters_out_of_the_rules_are_refused(
    url: str, args: tuple[str, ...], code: str
) -> None:
    result = runbus(url, "history", *args)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {code}"), line
