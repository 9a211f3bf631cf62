"""The wheel's rewrite of ``shared`` / ``services`` references (hatch_build.py), on sources."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from hatch_build import RewriteError, references, rewrite, wheel_problems
from shared.settings import REPO_ROOT

BEFORE = '''"""Docstring naming shared.producer and "services.runtime" stays."""

from __future__ import annotations

from shared.producer import Producer
from services import history
from  services.cli.main import (app,
    main)
import shared.names as names
import sharedlib.x
from shared_x import y
from .sibling import z

ARGV = ["-m", "services.runtime", "run"]
TARGET = "services.api.app:create_app"
PROSE = "see shared.validation for the codes"
WORD = "services"


def load(name: str) -> object:
    """Imports services.x by name."""
    return __import__(f"services.{name}.app")
'''

AFTER = '''"""Docstring naming shared.producer and "services.runtime" stays."""

from __future__ import annotations

from runbus._shared.producer import Producer
from runbus._services import history
from  runbus._services.cli.main import (app,
    main)
import runbus._shared.names as names
import sharedlib.x
from shared_x import y
from .sibling import z

ARGV = ["-m", "runbus._services.runtime", "run"]
TARGET = "runbus._services.api.app:create_app"
PROSE = "see shared.validation for the codes"
WORD = "services"


def load(name: str) -> object:
    """Imports services.x by name."""
    return __import__(f"runbus._services.{name}.app")
'''


def test_imports_and_module_strings_point_into_runbus_and_nothing_else_changes() -> None:
    # given a module with every kind of reference, and look-alikes that are not references
    # when it is rewritten
    # then exactly the references changed: docstrings, prose, relative and other imports did not
    assert rewrite(BEFORE.encode()).decode() == AFTER


def test_non_ascii_before_a_reference_keeps_the_offsets_right() -> None:
    # given a line whose AST offsets count UTF-8 bytes, not characters
    source = 'X = "é—"; from shared.models import RunEvent\n'.encode()
    # when / then
    assert rewrite(source) == 'X = "é—"; from runbus._shared.models import RunEvent\n'.encode()


def test_an_import_that_binds_the_moved_name_fails_the_rewrite() -> None:
    # given `import shared.names`, which binds `shared` in the module
    # when / then it is refused (rewriting it would leave `shared.names.X` unbound)
    with pytest.raises(RewriteError, match=r"m\.py: line 1: `import shared\.names`"):
        rewrite(b"import shared.names\n", "m.py")


def test_references_are_found_in_the_repository_and_none_after_rewriting() -> None:
    # given the repository's own modules
    tops = ("shared", "services", "runbus")
    modules = [path for top in tops for path in sorted((REPO_ROOT / top).rglob("*.py"))]
    # when each is rewritten
    rewritten = [rewrite(path.read_bytes(), str(path)) for path in modules]
    # then they named the moved packages, and no longer do
    assert sum(len(references(path.read_bytes())) for path in modules) > 100
    assert all(references(source) == [] for source in rewritten)


def test_a_wheel_with_a_top_level_package_or_a_leftover_import_has_problems(
    tmp_path: Path,
) -> None:
    # given a wheel shaped like the old one: shared/ at the top, an import left unrewritten
    wheel = tmp_path / "runbus-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("shared/__init__.py", "")
        archive.writestr("runbus/__init__.py", "from shared.producer import Producer\n")
        archive.writestr("runbus-0.1.0.dist-info/METADATA", "")
    # when it is checked
    problems = wheel_problems(wheel)
    # then each fault is named
    assert problems == [
        "shared/__init__.py: outside the runbus package",
        "runbus/py.typed: missing",
        "runbus/__init__.py:1: from shared.producer import",
    ]
