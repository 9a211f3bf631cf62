-- The append-only run history (both dialects in one table).
-- Times are fixed-width ISO 8601 UTC text ('YYYY-MM-DDTHH:MM:SS.ffffff+00:00'), so text
-- order is time order and the keyset cursor on (ts, id) works with plain comparisons.
CREATE TABLE history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Sanity bounds (the validator enforces the exact contract). Byte lengths: SQLite's
    -- length() stops at the first NUL, and run ids may hold one.
    event_id         TEXT    NOT NULL CHECK (event_id <> '' AND length(CAST(event_id AS BLOB)) <= 512),
    dialect          TEXT    NOT NULL CHECK (dialect IN ('brewslm', 'pulse')),
    project_id       INTEGER,
    run_id           TEXT    NOT NULL CHECK (run_id <> '' AND length(CAST(run_id AS BLOB)) <= 1024),
    parent_run_id    TEXT,
    stage            TEXT,
    severity         TEXT    NOT NULL,
    reason_code      TEXT,
    actor            TEXT,
    summary          TEXT,
    payload          TEXT,
    event_type       TEXT,
    message          TEXT,
    details          TEXT,
    ts               TEXT    NOT NULL,
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    accepted_at      TEXT    NOT NULL,
    taxonomy_version TEXT    NOT NULL,
    source_id        TEXT    NOT NULL,
    -- Same idempotency key as the partitioned PostgreSQL table (which needs ts in it).
    UNIQUE (event_id, ts)
);

CREATE INDEX history_run ON history (run_id, ts, id);
-- Covering: finding child runs reads the index only.
CREATE INDEX history_parent ON history (parent_run_id, run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX history_project ON history (project_id, ts, id);

-- Retention: prune writes a cutoff here, deletes, and removes the cutoff, in one transaction.
-- The delete trigger lets through only rows older than a cutoff present in this table.
CREATE TABLE history_prune_gate (cutoff TEXT NOT NULL);

CREATE TRIGGER history_no_update BEFORE UPDATE ON history
BEGIN
    SELECT RAISE(ABORT, 'history is append-only');
END;

CREATE TRIGGER history_no_delete BEFORE DELETE ON history
WHEN NOT EXISTS (SELECT 1 FROM history_prune_gate WHERE OLD.ts < cutoff)
BEGIN
    SELECT RAISE(ABORT, 'history is append-only');
END;
