-- Locks a namespace's usage row, creating it first when the namespace is new.
-- Every change to a namespace's entries takes this lock first. Lock order,
-- everywhere: namespace usage rows (sorted, COLLATE "C"), then the global
-- usage row, then entries.
SELECT kv_drop_functions('kv_lock_namespace');

CREATE FUNCTION kv_lock_namespace(p_namespace text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM kv_namespace_usage WHERE namespace = p_namespace FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO kv_namespace_usage (namespace) VALUES (p_namespace) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM kv_namespace_usage WHERE namespace = p_namespace FOR UPDATE;
    END IF;
END $$;
