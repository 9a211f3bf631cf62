"""Every console session of the documentation runs, in page order, against a live runbus, and
prints what the page shows (the README's tour included). See `tests.docs.shell` for the rules
of comparison and `tests.docs.blocks` for how a block is marked not run."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import REPO_ROOT
from tests.docs import live
from tests.docs.blocks import blocks, is_session, pages
from tests.docs.shell import steps

pytestmark = pytest.mark.integration

SESSION_PAGES = [page for page in pages() if any(is_session(b) for b in blocks(page))]


@pytest.mark.parametrize("page", SESSION_PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_session_of_the_page_prints_what_it_shows(page: Path, tmp_path: Path) -> None:
    all_steps = [step for block in blocks(page) if is_session(block) for step in steps(block)]
    # given a live system of the page's own and a shell on it
    with live.page_system(tmp_path, page) as system:
        # when every command of the page runs in order
        failures = system.run(all_steps)
    # then each printed what the page shows
    assert not failures, "\n".join(failures)
