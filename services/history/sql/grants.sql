-- Least privilege for the history, step 3 of 3 (run as the schema owner, after migrating):
-- what `runbus db grant --role <app>` does. The service role may INSERT and SELECT, create
-- next month's partition through the SECURITY DEFINER function, and nothing else. Triggers
-- refuse UPDATE, DELETE and TRUNCATE for every role, the owner included; only
-- `runbus history prune` (as the owner) removes history, by dropping whole partitions.
--
--   psql "postgresql://runbus_owner@db/runbus" -v schema=runbus -v app=runbus_app \
--        -f services/history/sql/grants.sql

GRANT USAGE ON SCHEMA :"schema" TO :"app";
GRANT SELECT, INSERT ON :"schema".history TO :"app";
GRANT SELECT ON :"schema".schema_migrations TO :"app";
GRANT USAGE ON SEQUENCE :"schema".history_id_seq TO :"app";
GRANT SELECT, INSERT ON :"schema".dead_letter_archive TO :"app";
-- A redrive from the archive claims each letter with an INSERT, and drops the claim (DELETE)
-- only when the letter could not be sent.
GRANT SELECT, INSERT, DELETE ON :"schema".dead_letter_redrives TO :"app";
GRANT EXECUTE ON FUNCTION :"schema".history_ensure_month(date) TO :"app";
