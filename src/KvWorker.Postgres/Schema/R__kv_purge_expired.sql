-- Removes up to p_limit expired entries (of one namespace, or of all when
-- p_namespace is null), earliest expiry first, in the caller's short
-- transaction, and queues one KvEntriesExpired per namespace. It locks the
-- namespaces, then the global row, as every writer does, so purges and writes
-- cannot deadlock. Its events give their time in UTC (+00:00), as every other
-- event does, whatever the server's or the session's time zone.
SELECT kv_drop_functions('kv_purge_expired');

CREATE FUNCTION kv_purge_expired(p_limit integer, p_maintain_global boolean, p_namespace text)
RETURNS TABLE (purged_namespace text, purged_entries bigint, purged_bytes bigint)
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    v_namespaces text[];
BEGIN
    SELECT array_agg(DISTINCT c.namespace) INTO v_namespaces
      FROM (SELECT e.namespace FROM kv_entries e
             WHERE e.expires_at <= now() AND (p_namespace IS NULL OR e.namespace = p_namespace)
             ORDER BY e.expires_at LIMIT p_limit) c;
    IF v_namespaces IS NULL THEN
        RETURN;
    END IF;
    PERFORM kv_lock_namespaces(v_namespaces);
    IF p_maintain_global THEN
        PERFORM 1 FROM kv_global_usage FOR UPDATE;
    END IF;

    RETURN QUERY
    WITH gone AS (
        DELETE FROM kv_entries e
         WHERE (e.namespace, e.key) IN (
               SELECT c.namespace, c.key FROM kv_entries c
                WHERE c.namespace = ANY (v_namespaces) AND c.expires_at <= now()
                ORDER BY c.expires_at LIMIT p_limit)
        RETURNING e.namespace, e.size_bytes),
    per_namespace AS (
        SELECT g.namespace AS ns, count(*) AS entries, sum(g.size_bytes)::bigint AS bytes
          FROM gone g GROUP BY g.namespace),
    counted AS (
        UPDATE kv_namespace_usage u
           SET used_bytes = u.used_bytes - p.bytes, entry_count = u.entry_count - p.entries
          FROM per_namespace p WHERE u.namespace = p.ns),
    counted_globally AS (
        UPDATE kv_global_usage g
           SET used_bytes = g.used_bytes - (SELECT coalesce(sum(p.bytes), 0) FROM per_namespace p),
               entry_count = g.entry_count - (SELECT coalesce(sum(p.entries), 0) FROM per_namespace p)
         WHERE p_maintain_global),
    reported AS (
        INSERT INTO kv_outbox (event_type, payload)
        SELECT 'KvEntriesExpired',
               json_build_object('namespace', p.ns, 'count', p.entries, 'bytes_freed', p.bytes, 'at', now())::text
          FROM per_namespace p)
    SELECT p.ns, p.entries, p.bytes FROM per_namespace p;
END $$;
