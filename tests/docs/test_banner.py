"""The tour shows the banner `runbus run all` prints (its block is data, not a session: `make run`
stays in the foreground), so it is compared with what `banner` prints for the default settings."""

from __future__ import annotations

from services.runtime.logic import banner
from shared.settings import REPO_ROOT, Settings
from tests.docs.blocks import blocks

PAGE = REPO_ROOT / "docs" / "tour.md"
FIRST_LINE = "runbus is running ("
#: How the tour spells the checkout's path.
SHOWN_ROOT = "/path/to/runbus"


def test_the_tours_banner_is_what_run_all_prints_by_default() -> None:
    (shown,) = [b for b in blocks(PAGE) if b.lines and b.lines[0].startswith(FIRST_LINE)]
    # the model's defaults, not this process's environment (a RUNBUS_API_PORT of one's own)
    default = {name: field.default for name, field in Settings.model_fields.items()}
    printed = banner(
        default["api_host"], default["api_port"], default["redis_url"], default["database_url"]
    )
    assert list(shown.lines) == [line.replace(str(REPO_ROOT), SHOWN_ROOT) for line in printed]
