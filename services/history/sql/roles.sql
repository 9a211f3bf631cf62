-- Least privilege for the history, step 1 of 3 (run as a superuser or a CREATEROLE role):
-- an owner role that migrates and prunes, a service role that will only INSERT and SELECT,
-- and the schema, owned by the owner.
--
--   psql "postgresql://postgres@db/runbus" -v schema=runbus -v owner=runbus_owner \
--        -v app=runbus_app -f services/history/sql/roles.sql
--
-- Step 2, as the owner:  RUNBUS_DATABASE_URL='postgresql://runbus_owner@db/runbus?search_path=runbus' runbus db migrate
-- Step 3, as the owner:  ... runbus db grant --role runbus_app   (or psql -f grants.sql)
-- Then set passwords (\password runbus_app) or your pg_hba.conf auth method of choice.

CREATE ROLE :"owner" LOGIN;
CREATE ROLE :"app" LOGIN;
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner";
REVOKE CREATE ON SCHEMA :"schema" FROM PUBLIC;
