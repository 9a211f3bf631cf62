-- 0002 narrows SQLite's rows (integer times, one JSON body; see the SQLite migration). The
-- PostgreSQL table keeps its layout: its times are already 8-byte timestamptz, its JSON columns
-- already one value each, and what doubled its insert rate is the insert itself (binary COPY
-- straight into the table, services/history/postgres.py), not the schema. This version keeps
-- the two backends' migration lists the same.
SELECT 1;
