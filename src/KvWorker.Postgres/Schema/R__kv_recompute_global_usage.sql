-- Re-derives the global counter from the namespace counters. The global row
-- is locked before the sum is read, so no writer's change is counted twice
-- or lost.
SELECT kv_drop_functions('kv_recompute_global_usage');

CREATE FUNCTION kv_recompute_global_usage() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM kv_global_usage FOR UPDATE;
    UPDATE kv_global_usage
       SET used_bytes = (SELECT coalesce(sum(used_bytes), 0) FROM kv_namespace_usage),
           entry_count = (SELECT coalesce(sum(entry_count), 0) FROM kv_namespace_usage);
END $$;
