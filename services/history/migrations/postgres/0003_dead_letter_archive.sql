-- The dead-letter archive: dead letters that retention trimmed off their stream, whole.
-- Key: the dead-letter stream and the entry id there (archiving twice stores once).
CREATE TABLE dead_letter_archive (
    stream        text        NOT NULL,
    entry_id      text        NOT NULL,
    -- The entry id's parts: id order is (ms, seq), and ms is when it was dead-lettered.
    ms            bigint      NOT NULL,
    seq           bigint      NOT NULL,
    errors        jsonb       NOT NULL,
    stage         text        NOT NULL,
    source_stream text        NOT NULL,
    source_id     text        NOT NULL,
    first_seen    text        NOT NULL,
    dead_at       timestamptz NOT NULL,
    archived_at   timestamptz NOT NULL DEFAULT now(),
    -- bytea: the original bytes and every other field, unchanged (any bytes, NUL included).
    original      bytea       NOT NULL,
    other         bytea       NOT NULL,
    size          bigint      NOT NULL,
    PRIMARY KEY (stream, entry_id)
);

CREATE INDEX dead_letter_archive_time ON dead_letter_archive (ms, seq);

CREATE FUNCTION dead_letter_archive_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the dead-letter archive is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER dead_letter_archive_no_update BEFORE UPDATE ON dead_letter_archive
    FOR EACH ROW EXECUTE FUNCTION dead_letter_archive_refuse();

-- One row per archived dead letter sent back by a redrive: inserting it is the claim, so two
-- redrives of one archived letter move it once.
CREATE TABLE dead_letter_redrives (
    stream      text        NOT NULL,
    entry_id    text        NOT NULL,
    redriven_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, entry_id)
);
