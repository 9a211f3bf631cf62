"""Wheel build hook: the installed package is one top-level ``runbus``, nothing else.

The repository keeps its layout (``shared/`` and ``services/`` at the top, imported as
``shared.x`` and ``services.x`` by the code, the tests and the editable install). A wheel that
shipped them as they are would put two generic top-level packages into every producer's
environment, where a service's own ``shared`` would shadow ours or ours theirs. So the wheel
target moves them (``sources`` in pyproject.toml) to ``runbus/_shared`` and
``runbus/_services``, and this hook rewrites what names them in the Python files it ships:

- ``from shared.x import y`` and ``import shared.x as z`` (absolute imports only);
- strings that are a dotted module path, such as ``"services.runtime"`` for
  ``python -m`` or the ``f"services.{name}.app"`` given to importlib.

Where an import cannot be rewritten safely (``import shared.x`` without ``as`` binds the name
``shared``) the build fails and says where. After the wheel is written, `wheel_problems` reads
it back and the build fails if anything but ``runbus`` is at the top, a file is there twice,
``runbus/py.typed`` is missing, or any shipped module still names ``shared`` or ``services``.
Docstrings and prose are left as written. Editable installs are not touched: they put the
repository itself on ``sys.path`` (``dev-mode-dirs``).
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "runbus"
#: The repository's top-level packages, and the module each becomes in the wheel.
MOVED = {"shared": f"{PACKAGE}._shared", "services": f"{PACKAGE}._services"}

_TOP = "|".join(MOVED)
# Each pattern is matched at the offset the AST gives, so only the module name is replaced.
_FROM = re.compile(rf"from\s+(?P<top>{_TOP})(?![\w])".encode())
_ALIAS = re.compile(rf"(?P<top>{_TOP})(?![\w])".encode())
_STRING = re.compile(rf"[rRbBuUfF]{{0,2}}(?:'''|\"\"\"|'|\")(?P<top>{_TOP})\.".encode())
#: A whole string that names a module: ``services.runtime``, ``services.api.app:create_app``.
_MODULE_PATH = re.compile(rf"(?:{_TOP})(?:\.\w+)+(?::[\w.]+)?")
#: The literal start of an f-string that builds one: ``f"services.{name}.app"``.
_MODULE_PREFIX = re.compile(rf"(?:{_TOP})\.(?:\w+\.)*")


class RewriteError(ValueError):
    """A reference to a moved package that the hook cannot rewrite safely."""


# A NamedTuple, not a dataclass: hatchling runs this file without registering it in
# sys.modules, where dataclasses cannot resolve postponed annotations.
class Reference(NamedTuple):
    """Where a module names a moved package, and how to find the name there."""

    line: int
    col: int  # in UTF-8 bytes, as the AST counts
    pattern: re.Pattern[bytes]
    what: str


def _moved_module(name: str | None) -> bool:
    return name is not None and name.split(".", 1)[0] in MOVED


def _docstrings(tree: ast.Module) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _import_references(node: ast.AST) -> Iterator[Reference]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and _moved_module(node.module):
        yield Reference(node.lineno, node.col_offset, _FROM, f"from {node.module} import")
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if _moved_module(alias.name):
                if alias.asname is None:
                    raise RewriteError(
                        f"line {node.lineno}: `import {alias.name}` binds the name of a moved "
                        f"package; write `from ... import ...` or `import {alias.name} as ...`"
                    )
                yield Reference(alias.lineno, alias.col_offset, _ALIAS, f"import {alias.name}")


def _string_reference(node: ast.AST, skip: set[int]) -> Reference | None:
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            skip.add(id(head))
            if _MODULE_PREFIX.fullmatch(head.value):
                return Reference(node.lineno, node.col_offset, _STRING, f"f{head.value!r}...")
    elif (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and _MODULE_PATH.fullmatch(node.value)
    ):
        return Reference(node.lineno, node.col_offset, _STRING, repr(node.value))
    return None


def references(source: bytes) -> list[Reference]:
    """Every place the module names ``shared`` or ``services`` as a module, in source order."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found: list[Reference] = []
    # ast.walk is breadth-first: an f-string is seen before the constants inside it.
    for node in ast.walk(tree):
        found += _import_references(node)
        string = _string_reference(node, skip)
        if string is not None:
            found.append(string)
    return sorted(found, key=lambda r: (r.line, r.col))


def rewrite(source: bytes, name: str = "<module>") -> bytes:
    """The module with every reference to a moved package pointed into ``runbus``."""
    try:
        found = references(source)
    except RewriteError as exc:
        raise RewriteError(f"{name}: {exc}") from None
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    out = source
    for ref in reversed(found):  # from the end, so earlier offsets stay right
        match = ref.pattern.match(out, starts[ref.line - 1] + ref.col)
        if match is None:
            raise RewriteError(f"{name}:{ref.line}: cannot find the module name in {ref.what}")
        top = match.group("top")
        new = MOVED[top.decode()].encode()
        out = out[: match.start("top")] + new + out[match.end("top") :]
    left = references(out)
    if left:
        raise RewriteError(f"{name}:{left[0].line}: {left[0].what} is still there after rewriting")
    return out


def wheel_problems(wheel: Path) -> list[str]:
    """What is wrong with a built wheel: empty when it holds ``runbus`` alone, rewritten."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        problems = [f"{n}: twice in the wheel" for n, k in Counter(names).items() if k > 1]
        problems += [
            f"{n}: outside the {PACKAGE} package"
            for n in names
            if n.split("/", 1)[0] != PACKAGE and ".dist-info/" not in n
        ]
        if f"{PACKAGE}/py.typed" not in names:
            problems.append(f"{PACKAGE}/py.typed: missing")
        for name in names:
            if name.endswith(".py"):
                problems += _module_problems(name, archive.read(name))
    return problems


def _module_problems(name: str, source: bytes) -> list[str]:
    try:
        return [f"{name}:{r.line}: {r.what}" for r in references(source)]
    except RewriteError as exc:
        return [f"{name}: {exc}"]


class RunbusWheelHook(BuildHookInterface[BuilderConfig]):
    """Ships rewritten copies of the Python files; checks the wheel it built."""

    PLUGIN_NAME = "custom"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._staging: Path | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Write the rewritten modules to a staging dir; they replace the originals."""
        if version != "standard":
            return  # an editable install runs the repository as it is
        self._staging = Path(tempfile.mkdtemp(prefix="runbus-wheel-"))
        for included in self.build_config.builder.recurse_included_files():
            if not included.path.endswith(".py"):
                continue
            staged = self._staging / included.distribution_path
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(rewrite(Path(included.path).read_bytes(), included.relative_path))
            # A forced file outside the project reserves its target: the original is skipped.
            build_data["force_include"][str(staged)] = included.distribution_path

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Fail the build (and remove the wheel) when `wheel_problems` finds anything."""
        if version != "standard":
            return
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
        problems = wheel_problems(Path(artifact_path))
        if problems:
            Path(artifact_path).unlink()
            raise RewriteError("the wheel is not self-contained:\n" + "\n".join(problems))
