"""The documentation site builds strictly (no broken link, anchor or snippet), its settings
table is the model's, and every block of every page is run by a test or marked not run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from shared.settings import REPO_ROOT
from tests.docs import settings_table
from tests.docs.blocks import Block, blocks, included_files, pages, problem, unchecked
from tests.docs.shell import matches, steps


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    # when the site is built as `make docs` builds it
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict",
         "--site-dir", str(tmp_path / "site")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    # then no warning (a broken link, anchor or snippet) stopped it
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "reference" / "settings" / "index.html").exists()


def test_the_settings_table_is_the_models() -> None:
    page = settings_table.PAGE.read_text(encoding="utf-8")
    assert settings_table.with_table(page) == page, "stale: run `make docs-settings`"


def test_every_block_is_run_or_marked_not_run() -> None:
    assert unchecked(pages()) == []


def test_every_included_example_exists() -> None:
    for name in included_files(pages()):
        assert (REPO_ROOT / name).is_file(), name


def _block(info: str, *lines: str) -> Block:
    return Block(REPO_ROOT / "README.md", 1, info, lines)


def test_the_rules_for_blocks() -> None:
    assert problem(_block("console", "$ runbus status")) is None
    assert problem(_block('console title="not run: needs Docker"', "$ docker compose up")) is None
    assert problem(_block('console title="not run"', "$ make run")) is not None  # no reason
    shown = _block('console title="not run: a benchmark"', "$ make bench", "p99 3 ms")
    assert problem(shown) is not None  # an output nothing compares
    continued = _block('console title="not run: needs Docker"', "$ docker run \\", "    x")
    assert problem(continued) is None  # a continued command is not output
    assert problem(_block("bash", "make run")) is not None  # neither run nor marked
    assert problem(_block("console", "make run")) is not None  # no prompt: nothing runs
    assert problem(_block("python", "print(1)")) is not None  # code not from docs_src
    assert problem(_block("python", '--8<-- "docs_src/producers/async_producer.py"')) is None
    assert problem(_block("text", "$ curl -s x")) is not None  # a hidden command
    assert problem(_block("json", '{"a": 1}')) is None


def test_a_session_splits_into_commands_and_outputs() -> None:
    block = _block("console", "$ echo a \\", "  b", "a b", "$ cat <<EOF", "> x", "> EOF", "x")
    found = steps(block)
    assert [s.command for s in found] == ["echo a \\\n  b", "cat <<EOF\nx\nEOF"]
    assert [s.expected for s in found] == [("a b",), ("x",)]


def test_outputs_compare_with_ellipses() -> None:
    assert matches(["1795400768646-0"], "1795400768646-0\n")
    assert not matches(["1795400768646-0"], "1795400768647-0")
    assert matches(["...-0"], "1795400768647-0")
    assert matches(["a", "...", "z"], "a\nb\nc\nz")
    assert matches(["a", "...", "z"], "a\nz")
    assert not matches(["a", "z"], "a\nb\nz")
    assert not matches([], "something printed")
    assert matches(["a   "], "a\n\n")


def test_every_page_is_read() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in pages()}
    assert {"README.md", "docs/index.md", "docs/tour.md"} <= names
    assert all(blocks(p) is not None for p in pages())


#: A Markdown link or image target: ``](target)``.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readmes_relative_links_resolve() -> None:
    # `make docs` checks the site's links; the README is no page of it, so it is checked here
    readme = REPO_ROOT / "README.md"
    targets = LINK.findall(readme.read_text(encoding="utf-8"))
    relative = [t.split("#", 1)[0] for t in targets if "://" not in t and t.split("#", 1)[0]]
    assert relative, "the README links the documentation"
    assert [t for t in relative if not (REPO_ROOT / t).exists()] == []
