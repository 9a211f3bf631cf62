"""Versioned schema migrations: ``<backend>/NNNN_<name>.sql``, applied in order, each once.

Each backend records what it applied in a ``schema_migrations`` table (version, name,
applied_at). A migration file is never edited once released: a change is a new file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_HERE = Path(__file__).resolve().parent
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

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
