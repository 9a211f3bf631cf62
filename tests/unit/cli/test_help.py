"""`runbus … --help`: every command's help shows boolean flags as flags (no ``<bool>``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from services.cli.main import app

# Wide enough that Rich never wraps or truncates an option name.
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The argv prefix of the app and of every command and subcommand, from the click tree."""
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from command_paths(sub, (*path, name))


def lookup(path: tuple[str, ...]) -> object:
    command: object = typer.main.get_command(app)
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return command


def flags_of(command: object) -> list[str]:
    params = getattr(command, "params", [])
    return [p.opts[0] for p in params if isinstance(p, TyperOption) and p.is_flag]


PATHS = list(command_paths(typer.main.get_command(app)))


def test_the_tree_has_every_command_group() -> None:
    # guards the enumeration itself: groups and their subcommands are both reached
    assert ("publish",) in PATHS and ("dlq", "redrive") in PATHS and len(PATHS) > 20


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "runbus")
def test_help_shows_flags_without_a_type(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    for flag in ["--help", *flags_of(lookup(path))]:
        assert flag in result.output, flag


def test_options_that_take_a_value_still_show_their_type() -> None:
    result = CliRunner().invoke(app, ["dlq", "tail", "--help"], env=WIDE)
    assert "<str>" in result.output and "<int range>" in result.output, result.output


def joins(doc: str) -> Iterator[str]:
    """The words on either side of each line break inside a paragraph of `doc`."""
    for paragraph in doc.split("\n\n"):
        lines = [line.split() for line in paragraph.strip().splitlines()]
        for before, after in itertools.pairwise(lines):
            if before and after:
                yield f"{before[-1]} {after[0]}".replace("`", "")


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "runbus")
def test_a_docstring_reads_as_paragraphs_not_as_its_source_lines(path: tuple[str, ...]) -> None:
    # The docstring's own line breaks (wrapped at 100 in the source) are not the help's: each
    # is joined into the paragraph, so the words around it share a line of the help.
    doc = getattr(lookup(path), "help", None) or ""
    out = CliRunner().invoke(app, [*path, "--help"], env=WIDE).output
    for pair in joins(doc):
        assert any(pair in line for line in out.splitlines()), (pair, out)
