"""The fenced code blocks of the documentation, and what the docs tests do with each.

A page's blocks fall into four kinds:

- ``console`` blocks are sessions: ``$ command`` lines (continued by a trailing ``\\`` or by
  ``> `` lines), each followed by the output it prints. The harness runs them, in page order,
  against a live system, and compares the output (see `tests.docs.shell`);
- ``python`` blocks include a file of ``docs_src/`` (``--8<-- "docs_src/..."``): the page runs it
  in a console block;
- blocks marked ``title="not run: why"`` are shown, never executed (the title says so on the
  site too): a Docker command, a long benchmark, a process in the foreground. The why is
  required, and such a block shows commands only: an output nothing compares would drift (show
  it in a ``text`` block that a test of the code printing it checks, as the banners are);
- anything else (``text``, ``json``, ``yaml``...) is data, not a command: such a block may not
  hold a ``$ `` prompt line, which would be a command nothing runs.

`unchecked` lists the blocks that break these rules, so nothing shown can drift unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shared.settings import REPO_ROOT

#: The pages the harness reads: the site's pages and the README.
PAGES_GLOB = "docs/**/*.md"
#: Languages whose blocks are programs: they must be run or marked not run.
EXECUTABLE = frozenset({"console", "bash", "sh", "shell", "zsh", "python", "py", "pycon", "js"})
#: The marker of a block shown but never executed.
NOT_RUN = re.compile(r'title="not run\b')
#: The marker with its reason (``not run: why``), which every not-run block must give.
NOT_RUN_WHY = re.compile(r'title="not run: [^"]{8,}"')
#: A Python block that includes a docs_src file (and nothing else).
SNIPPET = re.compile(r'^--8<-- "(docs_src/[\w/.-]+\.py)"$')
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
PROMPT = "$ "


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: where it is, its info string, its lines."""

    page: Path
    line: int
    info: str
    lines: tuple[str, ...]

    @property
    def lang(self) -> str:
        """The block's language, the first word of its info string."""
        words = self.info.replace("{", " ").split()
        return words[0].lstrip(".").lower() if words else ""

    @property
    def not_run(self) -> bool:
        """Marked as shown but never executed."""
        return bool(NOT_RUN.search(self.info))

    @property
    def where(self) -> str:
        """``page:line`` for messages."""
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}"


def pages(root: Path = REPO_ROOT) -> list[Path]:
    """Every page the harness checks: README.md, then docs/ in path order."""
    return [root / "README.md", *sorted(root.glob(PAGES_GLOB))]


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, in order (indented fences, in lists, included)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    n = 0
    while n < len(lines):
        opening = FENCE.match(lines[n])
        if not opening:
            n += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        end = n + 1
        while end < len(lines) and lines[end].strip() != fence:
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        found.append(Block(page, n + 1, opening["info"].strip(), tuple(body)))
        n = end + 1
    return found


def is_session(block: Block) -> bool:
    """A console block the harness runs."""
    return block.lang == "console" and not block.not_run


def _shown_output(block: Block) -> list[str]:
    """The lines of a not-run block that are neither a command, its continuation, nor blank."""
    shown: list[str] = []
    continued = False
    for line in block.lines:
        command = line.startswith(PROMPT) or continued or line.startswith("> ")
        if not command and line.strip():
            shown.append(line)
        continued = command and line.rstrip().endswith("\\")
    return shown


def problem(block: Block) -> str | None:
    """Why `block` would escape the tests, or None when it is run, included or marked."""
    if block.not_run:
        if not NOT_RUN_WHY.search(block.info):
            return 'a not-run block must say why: title="not run: <the reason>"'
        if block.lang == "console" and (shown := _shown_output(block)):
            return f"a not-run block shows output nothing compares: {shown[0]!r}"
        return None
    if block.lang == "console":
        first = next((line for line in block.lines if line.strip()), "")
        return None if first.startswith(PROMPT) else "a console block must start with '$ '"
    if block.lang in ("python", "py"):
        included = [line for line in block.lines if line.strip()]
        if len(included) == 1 and SNIPPET.match(included[0].strip()):
            return None
        return 'a python block must only include a docs_src file (--8<-- "docs_src/...")'
    if block.lang in EXECUTABLE:
        return f'a {block.lang} block is neither run (console) nor marked title="not run: ..."'
    if any(line.startswith(PROMPT) for line in block.lines):
        return "a '$ ' command outside a console block: nothing would run it"
    return None


def unchecked(all_pages: list[Path]) -> list[str]:
    """Every block, on every page, that nothing runs and nothing marks (with the reason)."""
    return [
        f"{block.where}: {reason}"
        for page in all_pages
        for block in blocks(page)
        if (reason := problem(block)) is not None
    ]


def included_files(all_pages: list[Path]) -> set[str]:
    """The docs_src files that pages include."""
    return {
        match[1]
        for page in all_pages
        for block in blocks(page)
        for line in block.lines
        if (match := SNIPPET.match(line.strip()))
    }
