"""The SQL of the store-ceiling part besides the real schema: the lean table and the variants.

- The lean table is what a user would write by hand: 7 columns, one unique key (the event id),
  the event's JSON kept whole, inserted the same way the store inserts (SQLite
  ``executemany ... ON CONFLICT DO NOTHING``; PostgreSQL binary COPY into a staging table,
  then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``).
- Each `Variant` removes one thing from a throwaway copy of the real schema (a file or schema
  of its own, created from the migration's text and then altered), to see what that thing
  costs an insert. The migrations themselves are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The lean table's columns, in parameter order.
LEAN_COLUMNS = ("event_id", "run_id", "project_id", "dialect", "ts", "accepted_at", "body")

LEAN_SQLITE = """
CREATE TABLE lean (
    event_id    TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    project_id  INTEGER,
    dialect     TEXT    NOT NULL,
    ts          TEXT    NOT NULL,
    accepted_at TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    UNIQUE (event_id)
)
"""
LEAN_SQLITE_INSERT = (
    f"INSERT INTO lean ({', '.join(LEAN_COLUMNS)}) VALUES ({', '.join('?' * len(LEAN_COLUMNS))}) "
    "ON CONFLICT (event_id) DO NOTHING"
)

LEAN_POSTGRES = """
CREATE TABLE lean (
    event_id    text        NOT NULL,
    run_id      text        NOT NULL,
    project_id  bigint,
    dialect     text        NOT NULL,
    ts          timestamptz NOT NULL,
    accepted_at timestamptz NOT NULL,
    body        text        NOT NULL,
    UNIQUE (event_id)
)
"""
LEAN_POSTGRES_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS lean_stage (LIKE lean INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
LEAN_POSTGRES_INSERT = (
    f"INSERT INTO lean ({', '.join(LEAN_COLUMNS)}) SELECT {', '.join(LEAN_COLUMNS)} "
    "FROM lean_stage ON CONFLICT (event_id) DO NOTHING"
)


@dataclass(frozen=True)
class Variant:
    """One thing removed from a throwaway copy of the history schema."""

    key: str
    """Its key in the results."""
    label: str
    """What is removed, for the report."""
    sqlite: tuple[str, ...] = ()
    """Statements run on the SQLite copy (its own connection) after its migration."""
    postgres: tuple[str, ...] = ()
    """Statements run on the PostgreSQL copy after its migration."""
    sqlite_edit: tuple[str, str] | None = None
    """(old, new) text replaced in the SQLite migration's copy before it runs."""
    idempotent: bool = True
    """False: no unique key left, so the insert has no ON CONFLICT clause."""


FULL = Variant("full", "nothing (the whole schema, re-measured beside the variants)")
_INDEXES = ("history_run", "history_parent", "history_project")
_CHECKS = ("history_event_id_check", "history_dialect_check", "history_run_id_check")
_CREATED_AT = "NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))"


def _drop_indexes(*names: str) -> tuple[str, ...]:
    return tuple(f"DROP INDEX {name}" for name in names)


VARIANTS: tuple[Variant, ...] = (
    *(
        Variant(
            f"no_{name}",
            f"index {name}",
            _drop_indexes(name),
            _drop_indexes(name),
        )
        for name in _INDEXES
    ),
    Variant("no_secondary", "all three secondary indexes", _drop_indexes(*_INDEXES),
            _drop_indexes(*_INDEXES)),
    Variant(
        "no_unique",
        "the unique key (event_id, ts): not idempotent any more",
        sqlite_edit=("UNIQUE (event_id, ts)", "CHECK (1)"),
        postgres=("ALTER TABLE history DROP CONSTRAINT history_event_key",),
        idempotent=False,
    ),
    Variant(
        "no_checks",
        "the CHECK constraints",
        ("PRAGMA ignore_check_constraints=ON",),
        ("ALTER TABLE history " + ", ".join(f"DROP CONSTRAINT {c}" for c in _CHECKS),),
    ),
    Variant(
        "no_triggers",
        "the append-only triggers (UPDATE/DELETE)",
        ("DROP TRIGGER history_no_update", "DROP TRIGGER history_no_delete"),
        ("DROP TRIGGER history_no_update_delete ON history",),
    ),
    Variant(
        "no_id",
        "id generation (AUTOINCREMENT / the bigserial sequence)",
        sqlite_edit=("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY"),
        postgres=("ALTER TABLE history ALTER COLUMN id DROP DEFAULT, "
                  "ALTER COLUMN id DROP NOT NULL",),
    ),
    Variant(
        "no_created_at",
        "the created_at default (the database's own clock per row)",
        sqlite_edit=(_CREATED_AT, ""),
        postgres=("ALTER TABLE history ALTER COLUMN created_at DROP DEFAULT, "
                  "ALTER COLUMN created_at DROP NOT NULL",),
    ),
)  # fmt: skip


#: The order the variants are measured in: the whole copy first and last (the spread of the
#: two is the noise the differences must beat).
ORDER: tuple[tuple[Variant, str], ...] = (
    (FULL, "full"),
    *((v, v.key) for v in VARIANTS),
    (FULL, "full_again"),
)


def edited(script: str, variant: Variant) -> str | None:
    """The SQLite migration's text with the variant's edit; None when the text is not there
    (the schema changed: the variant no longer says what it claims)."""
    if variant.sqlite_edit is None:
        return script
    old, new = variant.sqlite_edit
    if script.count(old) != 1:
        return None
    return script.replace(old, new)


def without_conflict(insert: str) -> str:
    """An ``INSERT ... ON CONFLICT ...`` statement without its conflict clause."""
    head, found, _ = insert.partition(" ON CONFLICT")
    if not found:
        raise ValueError("no ON CONFLICT clause")
    return head
