"""Versioned schema migrations: ``<backend>/NNNN_<name>.sql``, applied in order, each once.

Each backend records what it applied in a ``schema_migrations`` table (version, name,
applied_at). A migration file is never edited once released: a change is a new file.

A line ``-- @step <name>`` in a migration runs a data step of the backend's (SQLite:
`services.history.sqlite_upgrade.STEPS`) at that point, in the migration's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_HERE = Path(__file__).resolve().parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STEP = re.compile(r"^-- @step ([a-z0-9_]+)[ \t]*$", re.MULTILINE)

Backend = Literal["sqlite", "postgres"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema change."""

    version: int
    name: str
    sql: str


def migrations(backend: Backend) -> list[Migration]:
    """Every migration of a backend, in version order."""
    found: list[Migration] = []
    for path in sorted((_HERE / backend).iterdir()):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match[1]), match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {backend}: {versions}")
    return found


def pending(backend: Backend, applied: set[int]) -> list[Migration]:
    """The migrations not applied yet, in order."""
    return [m for m in migrations(backend) if m.version not in applied]


def parts(sql: str) -> list[tuple[str, str | None]]:
    """A migration's SQL cut at its ``-- @step`` lines: (the SQL before a step, its name), the
    last part's name None."""
    pieces = _STEP.split(sql)
    names: list[str | None] = [*pieces[1::2], None]
    return list(zip(pieces[0::2], names, strict=True))
