-- The append-only run history (both dialects in one table), partitioned by event time.
-- Text cannot hold NUL in PostgreSQL: the store escapes the free-text columns (run_id,
-- parent_run_id, actor, summary, message) that contain one; see services/history/postgres.py.
-- The runner sets search_path to the target schema (then pg_temp) before running this, so
-- unqualified names land there and SECURITY DEFINER functions capture exactly that path.

CREATE TABLE history (
    id               bigserial   NOT NULL,
    -- Sanity bounds (the validator enforces the exact contract; escaped text is longer).
    event_id         text        NOT NULL CHECK (length(event_id) BETWEEN 1 AND 512),
    dialect          text        NOT NULL CHECK (dialect IN ('brewslm', 'pulse')),
    project_id       bigint,
    run_id           text        NOT NULL CHECK (length(run_id) BETWEEN 1 AND 1024),
    parent_run_id    text,
    stage            text,
    severity         text        NOT NULL,
    reason_code      text,
    actor            text,
    summary          text,
    -- json, not jsonb: kept verbatim (key order, duplicates, and \u0000, which jsonb refuses).
    payload          json,
    event_type       text,
    message          text,
    details          json,
    ts               timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    accepted_at      timestamptz NOT NULL,
    taxonomy_version text        NOT NULL,
    source_id        text        NOT NULL,
    -- A partitioned table's unique key must contain the partition column: dedup on the
    -- producer's event id and event time (never now()).
    CONSTRAINT history_event_key UNIQUE (event_id, ts)
) PARTITION BY RANGE (ts);

-- Safety net for a month whose partition could not be created; prune never drops it.
CREATE TABLE history_default PARTITION OF history DEFAULT;

CREATE INDEX history_run ON history (run_id, ts, id);
-- Covering: finding child runs reads the index only.
CREATE INDEX history_parent ON history (parent_run_id, run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX history_project ON history (project_id, ts, id);

CREATE FUNCTION history_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Row triggers on a partitioned table are cloned to every partition, present and future.
CREATE TRIGGER history_no_update_delete BEFORE UPDATE OR DELETE ON history
    FOR EACH ROW EXECUTE FUNCTION history_refuse();
-- Statement triggers are not cloned: each partition gets its own TRUNCATE guard.
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history
    FOR EACH STATEMENT EXECUTE FUNCTION history_refuse();
CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history_default
    FOR EACH STATEMENT EXECUTE FUNCTION history_refuse();

-- Creates the monthly partition history_pYYYYMM holding [month_start, next month) in UTC.
-- SECURITY DEFINER: the service role (INSERT/SELECT only) may call it, and nothing else DDL.
CREATE FUNCTION history_ensure_month(month_start date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    part  text := 'history_p' || to_char(month_start, 'YYYYMM');
    lower text := to_char(month_start, 'YYYY-MM-DD') || ' 00:00:00+00';
    upper text := to_char(month_start + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00';
BEGIN
    IF month_start <> date_trunc('month', month_start)::date
       OR month_start < date '1970-01-01' OR month_start >= date '2100-01-01' THEN
        RAISE EXCEPTION 'not a month start within 1970..2100: %', month_start;
    END IF;
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('runbus.history.partitions'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF history FOR VALUES FROM (%L) TO (%L)',
                       part, lower, upper);
        EXECUTE format('CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION history_refuse()', part);
    EXCEPTION WHEN check_violation THEN
        -- The DEFAULT partition already holds rows of that month: they stay there.
        RAISE WARNING 'history: month % stays in history_default (%)', month_start, SQLERRM;
        RETURN NULL;
    END;
    RETURN part;
END
$$;
REVOKE ALL ON FUNCTION history_ensure_month(date) FROM PUBLIC;
