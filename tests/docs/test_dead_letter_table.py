"""The dead-letter field table of docs/dead-letters.md names exactly the codec's fields."""

from __future__ import annotations

import re

from shared.settings import REPO_ROOT
from shared.wire import DEAD_LETTERS

PAGE = REPO_ROOT / "docs" / "dead-letters.md"
TABLE_HEAD = "| field | what it holds |"


def documented_fields() -> set[str]:
    """Every backticked name in the first column of the page's field table."""
    text = PAGE.read_text(encoding="utf-8")
    rows = text[text.index(TABLE_HEAD) :].split("\n\n", 1)[0].splitlines()[2:]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_the_table_lists_every_field_the_codec_writes_and_no_other() -> None:
    written = {line.split(" ", 1)[0] for line in DEAD_LETTERS.describe()}
    written = {"orig:<field>" if name == "orig:<name>" else name for name in written}
    assert documented_fields() == written
