"""Imports point one way: down the layers below, never up, never sideways between packages.

Every module of ``shared``, ``services``, ``bench``, ``docs_src`` and ``runbus`` is parsed with
`ast`; each of its imports (at module level or inside a function) must name its own package or
a package of a lower layer. Dynamic imports (``importlib.import_module``, ``__import__``) are
refused, since they would hide an import from this check. The runtime starts the command line
and the API as child processes by module name: a command line is not an import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("shared", "services", "bench", "docs_src", "runbus")

#: Bottom to top. A package imports its own modules and those of lower layers only; packages of
#: one layer do not import each other.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"shared", "services"}),  # ``services`` alone: its empty ``__init__``
    frozenset({"services.history", "services.ops", "services.security", "services.demo"}),
    frozenset({"services.validator", "services.persister", "services.coach"}),
    frozenset({"services.runtime", "services.api"}),
    frozenset({"services.cli"}),
    frozenset({"runbus"}),  # the installed public package: the producer API and the console script
    frozenset({"bench", "docs_src"}),  # tools and examples: they use the public package
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}
DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def package_of(module: str) -> str | None:
    """The layered package a dotted module name belongs to (None: not ours)."""
    parts = module.split(".")
    if parts[0] == "services":
        return ".".join(parts[:2])
    return parts[0] if parts[0] in SOURCES else None


def module_name(path: Path) -> str:
    """The dotted name of a source file under the repository root."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in `tree`, ``from a import b`` as ``a.b``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: relative import"
            base = node.module or ""
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def dynamic(tree: ast.AST) -> Iterator[int]:
    """Lines calling ``importlib.import_module`` or ``__import__``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DYNAMIC_IMPORTS:
                yield node.lineno


def violations(module: str, source: str) -> list[str]:
    """Every import of `module` (its source text) that breaks the layering."""
    own = package_of(module)
    assert own in RANK, f"{module}: package {own} has no layer in LAYERS"
    tree = ast.parse(source)
    found = [f"{module}:{line}: dynamic import" for line in dynamic(tree)]
    for line, target in imported(tree):
        other = package_of(target)
        if other is None or other == own:
            continue
        if other not in RANK or RANK[other] >= RANK[own]:
            found.append(f"{module}:{line}: {own} (layer {RANK[own]}) imports {target}")
    return found


def sources() -> Iterator[Path]:
    """Every Python file of the layered packages."""
    for root in SOURCES:
        yield from sorted((ROOT / root).rglob("*.py"))


def test_every_import_points_down_the_layers() -> None:
    found = [
        problem
        for path in sources()
        for problem in violations(module_name(path), path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_every_package_has_a_layer() -> None:
    packages = {package_of(module_name(path)) for path in sources()} - {None}
    assert packages == set(RANK)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("services.runtime.__main__", "from services.cli.main import app"),  # up
        ("services.api.app", "from services.runtime.supervisor import install_stop_signals"),
        ("services.runtime.logic", "def f():\n    import services.api.app"),  # lazy, sideways
        ("services.ops.status", "from services import coach"),  # sideways, one layer up
        ("shared.settings", "from services.history import open_store"),
        ("services.cli.run", "import importlib\nimportlib.import_module('services.x.app')"),
    ],
)
def test_an_upward_sideways_or_dynamic_import_is_caught(module: str, source: str) -> None:
    assert len(violations(module, source)) == 1


def test_imports_down_and_within_a_package_pass() -> None:
    source = "from shared import service\nfrom services.coach.io import CoachStore\n"
    assert violations("services.runtime.stages", source) == []
    assert violations("services.coach.app", "from services.coach.io import CoachStore") == []
