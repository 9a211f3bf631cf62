"""A command synopsis on a page (a plain fenced block starting ``runbus <command>``) names every
option of that command, so a new option cannot be missing from the page that shows its usage."""

from __future__ import annotations

import re

import typer.main
from typer.core import TyperGroup, TyperOption

from services.cli.main import app
from tests.docs.blocks import Block, blocks, pages

#: The words of a synopsis's command path: lower-case names before the first option or bracket.
COMMAND_WORD = re.compile(r"[a-z][a-z-]*")


def synopses() -> list[Block]:
    """Every block without a language whose first line is ``runbus ...``: a usage synopsis."""
    return [
        block
        for page in pages()
        for block in blocks(page)
        if not block.lang and block.lines and block.lines[0].startswith("runbus ")
    ]


def command_of(block: Block) -> tuple[tuple[str, ...], object]:
    """The CLI command a synopsis shows: the longest command path its first words spell."""
    command: object = typer.main.get_command(app)
    path: list[str] = []
    for word in block.lines[0].split()[1:]:
        if not (COMMAND_WORD.fullmatch(word) and isinstance(command, TyperGroup)):
            break
        sub = command.commands.get(word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return tuple(path), command


def long_options(command: object) -> list[str]:
    """The long name of every option of `command` but --help."""
    names = [
        next(o for o in p.opts if o.startswith("--"))
        for p in getattr(command, "params", [])
        if isinstance(p, TyperOption)
    ]
    return [name for name in names if name != "--help"]


def test_the_pages_show_synopses() -> None:
    # guards the search itself: the redrive, purge and tail synopses are found
    found = {command_of(block)[0] for block in synopses()}
    assert {("dlq", "redrive"), ("dlq", "purge"), ("dlq", "tail")} <= found


def test_every_synopsis_names_every_option_of_its_command() -> None:
    missing = []
    for block in synopses():
        path, command = command_of(block)
        assert path, f"{block.where}: no runbus command in {block.lines[0]!r}"
        text = "\n".join(block.lines)
        absent = [o for o in long_options(command) if not re.search(rf"{o}(?![\w-])", text)]
        if absent:
            missing.append(f"{block.where}: runbus {' '.join(path)} lacks {', '.join(absent)}")
    assert not missing, "\n".join(missing)
