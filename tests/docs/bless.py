"""Write what a page's sessions print into the page: ``python -m tests.docs.bless docs/x.md``.

For authors: run it after writing the commands of a new console block, then read the diff and
replace what varies between runs (stream ids, times) with ``...``. A step whose output already
matches the page (its ``...`` included) is left as written. Runs against a live system, as
the tests do (`tests.docs.test_pages`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.docs import live
from tests.docs.blocks import Block, blocks, is_session
from tests.docs.shell import Step, matches, steps


def bless(page: Path) -> list[str]:
    """Run the page and rewrite the outputs that differ; the failures of the run."""
    sessions = [b for b in blocks(page) if is_session(b)]
    all_steps = [step for block in sessions for step in steps(block)]
    printed: dict[Step, str] = {}
    with tempfile.TemporaryDirectory() as tmp_dir, live.page_system(Path(tmp_dir), page) as system:
        failures = system.run(all_steps, printed)
    _rewrite(page, sessions, printed)
    return failures


def _body(block: Block, printed: dict[Step, str]) -> list[str]:
    body: list[str] = []
    for step in steps(block):
        body += step.raw
        shown = printed.get(step)
        keep = shown is None or matches(step.expected, shown)
        body += list(step.expected) if keep else (shown or "").splitlines()
    return body


def _rewrite(page: Path, sessions: list[Block], printed: dict[Step, str]) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    for block in reversed(sessions):  # from the end, so earlier line numbers stay right
        indent = " " * (len(lines[block.line - 1]) - len(lines[block.line - 1].lstrip()))
        new = [indent + line if line else line for line in _body(block, printed)]
        lines[block.line : block.line + len(block.lines)] = new
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        for failure in bless(Path(name).resolve()):
            print(failure.splitlines()[0])
