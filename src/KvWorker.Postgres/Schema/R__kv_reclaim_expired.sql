-- Deletes a namespace's expired entries (except the key being written, whose
-- bytes the caller already counts), reports them like a purge, and returns
-- the bytes freed. Called only when a write would otherwise be rejected, so
-- expired entries never cause a rejection while ordinary writes stay O(1).
SELECT kv_drop_functions('kv_reclaim_expired');

CREATE FUNCTION kv_reclaim_expired(p_namespace text, p_except_key text, p_maintain_global boolean)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_bytes bigint;
    v_count bigint;
BEGIN
    WITH gone AS (
        DELETE FROM kv_entries
         WHERE namespace = p_namespace AND expires_at <= now() AND key <> p_except_key
        RETURNING size_bytes)
    SELECT coalesce(sum(size_bytes), 0), count(*) INTO v_bytes, v_count FROM gone;
    IF v_count > 0 THEN
        PERFORM kv_add_usage(p_namespace, -v_bytes, -v_count, p_maintain_global);
        PERFORM kv_enqueue_event('KvEntriesExpired', json_build_object(
            'namespace', p_namespace, 'count', v_count, 'bytes_freed', v_bytes, 'at', now()));
    END IF;
    RETURN v_bytes;
END $$;
