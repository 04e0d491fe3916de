-- kv_set. status: 'ok', 'replayed' (applied before; nothing changed),
-- 'identity_reused', or a quota status from kv_reserve.
SELECT kv_drop_functions('kv_set');

CREATE FUNCTION kv_set(
    p_namespace text, p_key text, p_value text, p_size bigint, p_ttl_seconds double precision,
    p_namespace_quota bigint, p_global_quota bigint, p_thresholds double precision[],
    p_request_id text, p_request_hash text,
    OUT status text, OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old_size bigint;
BEGIN
    status := kv_claim_request(p_request_id, 'kv_set', p_namespace, p_key, p_request_hash);
    IF status <> 'new' THEN
        RETURN;
    END IF;
    PERFORM kv_lock_namespace(p_namespace);
    SELECT e.size_bytes INTO v_old_size FROM kv_entries e WHERE e.namespace = p_namespace AND e.key = p_key;

    SELECT r.status, r.used_bytes, r.quota_bytes INTO status, used_bytes, quota_bytes
      FROM kv_reserve(p_namespace, p_key, p_size - coalesce(v_old_size, 0),
                      CASE WHEN v_old_size IS NULL THEN 1 ELSE 0 END,
                      p_namespace_quota, p_global_quota, p_thresholds) r;
    IF status <> 'ok' THEN
        PERFORM kv_release_request(p_request_id);
        RETURN;
    END IF;

    INSERT INTO kv_entries AS e (namespace, key, value, size_bytes, expires_at, updated_at)
    VALUES (p_namespace, p_key, p_value, p_size, now() + p_ttl_seconds * interval '1 second', now())
    ON CONFLICT (namespace, key) DO UPDATE
       SET value = excluded.value, size_bytes = excluded.size_bytes,
           expires_at = excluded.expires_at, updated_at = excluded.updated_at;
END $$;
