-- The dead-letter archive: dead letters that retention trimmed off their stream, whole.
-- Key: the dead-letter stream and the entry id there (archiving twice stores once).
-- Times as in the history (0002): integers, microseconds since the epoch (UTC); the writer
-- binds archived_at and redriven_at from its clock, as the history's insert time.
CREATE TABLE dead_letter_archive (
    stream        TEXT    NOT NULL,
    entry_id      TEXT    NOT NULL,
    -- The entry id's parts: id order is (ms, seq), and ms is when it was dead-lettered.
    ms            INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    errors        TEXT    NOT NULL,
    stage         TEXT    NOT NULL,
    source_stream TEXT    NOT NULL,
    source_id     TEXT    NOT NULL,
    first_seen    TEXT    NOT NULL,
    dead_at       INTEGER NOT NULL CHECK (typeof(dead_at) = 'integer'),
    archived_at   INTEGER NOT NULL CHECK (typeof(archived_at) = 'integer'),
    original      BLOB    NOT NULL,
    other         BLOB    NOT NULL,
    size          INTEGER NOT NULL,
    PRIMARY KEY (stream, entry_id)
) WITHOUT ROWID;

CREATE INDEX dead_letter_archive_time ON dead_letter_archive (ms, seq);

CREATE TRIGGER dead_letter_archive_no_update BEFORE UPDATE ON dead_letter_archive
BEGIN
    SELECT RAISE(ABORT, 'the dead-letter archive is append-only');
END;

-- One row per archived dead letter sent back by a redrive: inserting it is the claim, so two
-- redrives of one archived letter move it once.
CREATE TABLE dead_letter_redrives (
    stream      TEXT NOT NULL,
    entry_id    TEXT NOT NULL,
    redriven_at INTEGER NOT NULL CHECK (typeof(redriven_at) = 'integer'),
    PRIMARY KEY (stream, entry_id)
) WITHOUT ROWID;
