-- Request identities remember what they identified, so that a message_id
-- reused for a different request is refused instead of answered with the
-- first request's result. Rows recorded before this have no operation and are
-- still answered as replays until the purge forgets them.
ALTER TABLE kv_processed_requests
    ADD COLUMN IF NOT EXISTS operation    text,
    ADD COLUMN IF NOT EXISTS namespace    text,
    ADD COLUMN IF NOT EXISTS key          text,
    ADD COLUMN IF NOT EXISTS request_hash text;

-- Deployment-wide schedules: the replica that moves next_run_at forward runs
-- the job for that interval (the expired-entry purge).
CREATE TABLE IF NOT EXISTS kv_schedule (
    name        text        PRIMARY KEY,
    next_run_at timestamptz NOT NULL
);

-- The table of the runner that applied the numbered scripts before Evolve.
DROP TABLE IF EXISTS kv_schema_migrations;

-- Drops every function called p_name in the current schema, whatever its
-- arguments. Each function's file (R__*.sql) starts with it, so a changed
-- signature leaves no stale overload behind.
CREATE OR REPLACE FUNCTION kv_drop_functions(p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_proc p
         WHERE p.proname = p_name AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_function);
    END LOOP;
END $$;
