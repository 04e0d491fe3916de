-- Locks namespaces for the rest of the transaction: an advisory lock per
-- namespace (class 0x6b76, "kv", and the namespace's hashtext), taken in hash
-- order. Every change to a namespace's entries and counters holds its lock
-- first (group commit, purge), which serialises writers of one namespace and
-- makes quotas exact; everyone takes them in the same order, and before the
-- global usage row, so nobody deadlocks.
SELECT kv_drop_functions('kv_lock_namespaces');

CREATE FUNCTION kv_lock_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_hash integer;
BEGIN
    FOR v_hash IN SELECT DISTINCT hashtext(n) FROM unnest(p_namespaces) AS n ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(27510, v_hash);
    END LOOP;
END $$;
