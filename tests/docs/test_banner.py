"""The tour and the deployment page show the banner `runbus run all` prints (their blocks are
data, not sessions: `make run` and `make run-cluster` stay in the foreground), so each is
compared with what `banner` prints for the default settings (the cluster's URL for
`make run-cluster`)."""

from __future__ import annotations

from pathlib import Path

from services.runtime.logic import banner
from shared.settings import REPO_ROOT, Settings
from tests.docs.blocks import blocks

PAGE = REPO_ROOT / "docs" / "tour.md"
CLUSTER_PAGE = REPO_ROOT / "docs" / "deployment.md"
#: `make run-cluster`'s Redis URL (RUNBUS_CLUSTER_URL's default in the Makefile).
CLUSTER_URL = "redis://127.0.0.1:7000/0"
FIRST_LINE = "runbus is running ("
#: How the tour spells the checkout's path.
SHOWN_ROOT = "/path/to/runbus"


def shown_banner(page: Path) -> list[str]:
    """The one block of `page` that is the banner."""
    (shown,) = [b for b in blocks(page) if b.lines and b.lines[0].startswith(FIRST_LINE)]
    return list(shown.lines)


def printed_banner(redis_url: str | None = None) -> list[str]:
    """The banner for the model's defaults (not this process's environment: a
    RUNBUS_API_PORT of one's own), the checkout's path as the pages spell it."""
    default = {name: field.default for name, field in Settings.model_fields.items()}
    printed = banner(
        default["api_host"],
        default["api_port"],
        redis_url or default["redis_url"],
        default["database_url"],
    )
    return [line.replace(str(REPO_ROOT), SHOWN_ROOT) for line in printed]


def test_the_tours_banner_is_what_run_all_prints_by_default() -> None:
    assert shown_banner(PAGE) == printed_banner()


def test_the_cluster_banner_is_what_run_cluster_prints() -> None:
    assert shown_banner(CLUSTER_PAGE) == printed_banner(CLUSTER_URL)
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"RUNBUS_CLUSTER_URL:-{CLUSTER_URL}" in makefile
