-- kv_increment. status: 'ok', 'replayed' (value and ttl_seconds are the first
-- answer's), 'identity_reused', 'not_integer' (the live value is not a JSON
-- integer), 'too_large' (past p_max_digits), or a quota status from kv_reserve.
SELECT kv_drop_functions('kv_increment');

CREATE FUNCTION kv_increment(
    p_namespace text, p_key text, p_delta numeric, p_initial numeric, p_ttl_seconds double precision,
    p_namespace_quota bigint, p_global_quota bigint, p_thresholds double precision[], p_max_digits integer,
    p_request_id text, p_request_hash text,
    OUT status text, OUT value text, OUT ttl_seconds double precision,
    OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old kv_entries%ROWTYPE;
    v_found boolean;
    v_new numeric;
    v_expires timestamptz;
BEGIN
    status := kv_claim_request(p_request_id, 'kv_increment', p_namespace, p_key, p_request_hash);
    IF status = 'replayed' THEN
        SELECT r.result, r.ttl_seconds INTO value, ttl_seconds FROM kv_processed_requests r WHERE r.request_id = p_request_id;
        RETURN;
    ELSIF status <> 'new' THEN
        RETURN;
    END IF;
    PERFORM kv_lock_namespace(p_namespace);
    SELECT * INTO v_old FROM kv_entries e WHERE e.namespace = p_namespace AND e.key = p_key;
    v_found := FOUND;

    IF v_found AND (v_old.expires_at IS NULL OR v_old.expires_at > now()) THEN
        -- A JSON integer: no fraction, no exponent; true/false/strings fail here.
        IF length(v_old.value) > p_max_digits + 1 OR v_old.value !~ '^-?(0|[1-9][0-9]*)$' THEN
            status := 'not_integer';
            PERFORM kv_release_request(p_request_id);
            RETURN;
        END IF;
        v_new := v_old.value::numeric + p_delta;
        v_expires := CASE WHEN p_ttl_seconds IS NULL THEN v_old.expires_at
                          ELSE now() + p_ttl_seconds * interval '1 second' END;
    ELSE
        v_new := p_initial + p_delta;
        v_expires := now() + p_ttl_seconds * interval '1 second';
    END IF;

    value := v_new::text;
    IF length(ltrim(value, '-')) > p_max_digits THEN
        status := 'too_large';
        PERFORM kv_release_request(p_request_id);
        RETURN;
    END IF;

    SELECT r.status, r.used_bytes, r.quota_bytes INTO status, used_bytes, quota_bytes
      FROM kv_reserve(p_namespace, p_key, octet_length(value) - coalesce(v_old.size_bytes, 0),
                      CASE WHEN v_found THEN 0 ELSE 1 END,
                      p_namespace_quota, p_global_quota, p_thresholds) r;
    IF status <> 'ok' THEN
        PERFORM kv_release_request(p_request_id);
        RETURN;
    END IF;

    INSERT INTO kv_entries AS e (namespace, key, value, size_bytes, expires_at, updated_at)
    VALUES (p_namespace, p_key, value, octet_length(value), v_expires, now())
    ON CONFLICT (namespace, key) DO UPDATE
       SET value = excluded.value, size_bytes = excluded.size_bytes,
           expires_at = excluded.expires_at, updated_at = excluded.updated_at;
    ttl_seconds := extract(epoch FROM v_expires - now());
    PERFORM kv_record_result(p_request_id, value, ttl_seconds);
END $$;
