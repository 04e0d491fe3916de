-- Admits a change of p_delta_bytes to a namespace whose row the caller has
-- locked, and books it. status: 'ok', 'namespace_quota' or 'global_quota';
-- used_bytes and quota_bytes are the figures of the quota that decided.
-- Each threshold (a fraction of the namespace quota) that the new usage
-- reaches from below queues one NamespaceQuotaThresholdReached. Crossings are
-- judged under the namespace lock, so exactly one writer sees each; usage
-- falling back below a threshold re-arms it.
SELECT kv_drop_functions('kv_reserve');

CREATE FUNCTION kv_reserve(
    p_namespace text, p_key text, p_delta_bytes bigint, p_delta_entries bigint,
    p_namespace_quota bigint, p_global_quota bigint, p_thresholds double precision[],
    OUT status text, OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_used bigint;
    v_global_used bigint;
    v_expired_bytes bigint;
BEGIN
    SELECT u.used_bytes INTO v_used FROM kv_namespace_usage u WHERE u.namespace = p_namespace;
    IF p_delta_bytes > 0 AND v_used + p_delta_bytes > p_namespace_quota THEN
        v_used := v_used - kv_reclaim_expired(p_namespace, p_key, p_global_quota IS NOT NULL);
        IF v_used + p_delta_bytes > p_namespace_quota THEN
            status := 'namespace_quota'; used_bytes := v_used; quota_bytes := p_namespace_quota;
            RETURN;
        END IF;
    END IF;

    IF p_global_quota IS NOT NULL THEN
        SELECT g.used_bytes INTO v_global_used FROM kv_global_usage g FOR UPDATE;
        IF p_delta_bytes > 0 AND v_global_used + p_delta_bytes > p_global_quota THEN
            -- Expired entries elsewhere still count until purged; discount them
            -- without deleting (their namespaces' rows are not ours to lock).
            SELECT coalesce(sum(e.size_bytes), 0) INTO v_expired_bytes
              FROM kv_entries e
             WHERE e.expires_at <= now() AND NOT (e.namespace = p_namespace AND e.key = p_key);
            v_global_used := v_global_used - v_expired_bytes;
            IF v_global_used + p_delta_bytes > p_global_quota THEN
                status := 'global_quota'; used_bytes := v_global_used; quota_bytes := p_global_quota;
                RETURN;
            END IF;
        END IF;
    END IF;

    PERFORM kv_add_usage(p_namespace, p_delta_bytes, p_delta_entries, p_global_quota IS NOT NULL);
    IF p_delta_bytes > 0 THEN
        PERFORM kv_enqueue_event('NamespaceQuotaThresholdReached', json_build_object(
                    'namespace', p_namespace, 'threshold', t, 'quota_bytes', p_namespace_quota,
                    'used_bytes', v_used + p_delta_bytes, 'at', now()))
           FROM unnest(p_thresholds) AS t
          WHERE v_used < t * p_namespace_quota AND v_used + p_delta_bytes >= t * p_namespace_quota;
    END IF;
    status := 'ok'; used_bytes := v_used + p_delta_bytes; quota_bytes := p_namespace_quota;
END $$;
