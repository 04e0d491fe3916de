-- The mutations, one round trip each. Lock order, everywhere:
-- namespace usage row, then the global usage row, then entries.

CREATE OR REPLACE FUNCTION kv_lock_namespace(p_namespace text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM kv_namespace_usage WHERE namespace = p_namespace FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO kv_namespace_usage (namespace) VALUES (p_namespace) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM kv_namespace_usage WHERE namespace = p_namespace FOR UPDATE;
    END IF;
END $$;

-- Applies a change of bytes and entries to the usage counters.
CREATE OR REPLACE FUNCTION kv_add_usage(p_namespace text, p_bytes bigint, p_entries bigint, p_maintain_global boolean)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_maintain_global THEN
        UPDATE kv_global_usage
           SET used_bytes = used_bytes + p_bytes, entry_count = entry_count + p_entries;
    END IF;
    UPDATE kv_namespace_usage
       SET used_bytes = used_bytes + p_bytes, entry_count = entry_count + p_entries
     WHERE namespace = p_namespace;
END $$;

-- Deletes a namespace's expired entries (except the key being written, whose
-- bytes the caller already counts) and returns the bytes freed. Called only
-- when a write would otherwise be rejected, so expired entries never cause a
-- rejection while ordinary writes stay O(1).
CREATE OR REPLACE FUNCTION kv_reclaim_expired(p_namespace text, p_except_key text, p_maintain_global boolean)
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
    END IF;
    RETURN v_bytes;
END $$;

-- Admits a change of p_delta_bytes to a namespace whose row the caller has
-- locked, and books it. status: 'ok', 'namespace_quota' or 'global_quota';
-- used_bytes and quota_bytes are the figures of the quota that decided.
CREATE OR REPLACE FUNCTION kv_reserve(
    p_namespace text, p_key text, p_delta_bytes bigint, p_delta_entries bigint,
    p_namespace_quota bigint, p_global_quota bigint,
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
    status := 'ok'; used_bytes := v_used + p_delta_bytes; quota_bytes := p_namespace_quota;
END $$;

CREATE OR REPLACE FUNCTION kv_set(
    p_namespace text, p_key text, p_value text, p_size bigint, p_ttl_seconds double precision,
    p_namespace_quota bigint, p_global_quota bigint,
    OUT status text, OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old_size bigint;
BEGIN
    PERFORM kv_lock_namespace(p_namespace);
    SELECT e.size_bytes INTO v_old_size FROM kv_entries e WHERE e.namespace = p_namespace AND e.key = p_key;

    SELECT r.status, r.used_bytes, r.quota_bytes INTO status, used_bytes, quota_bytes
      FROM kv_reserve(p_namespace, p_key, p_size - coalesce(v_old_size, 0),
                      CASE WHEN v_old_size IS NULL THEN 1 ELSE 0 END,
                      p_namespace_quota, p_global_quota) r;
    IF status <> 'ok' THEN RETURN; END IF;

    INSERT INTO kv_entries AS e (namespace, key, value, size_bytes, expires_at, updated_at)
    VALUES (p_namespace, p_key, p_value, p_size, now() + p_ttl_seconds * interval '1 second', now())
    ON CONFLICT (namespace, key) DO UPDATE
       SET value = excluded.value, size_bytes = excluded.size_bytes,
           expires_at = excluded.expires_at, updated_at = excluded.updated_at;
END $$;

-- status: 'ok', 'not_integer' (the live value is not a JSON integer),
-- 'too_large' (past p_max_digits), or a quota status from kv_reserve.
CREATE OR REPLACE FUNCTION kv_increment(
    p_namespace text, p_key text, p_delta numeric, p_initial numeric, p_ttl_seconds double precision,
    p_namespace_quota bigint, p_global_quota bigint, p_max_digits integer,
    OUT status text, OUT value text, OUT ttl_seconds double precision,
    OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old kv_entries%ROWTYPE;
    v_found boolean;
    v_new numeric;
    v_expires timestamptz;
BEGIN
    PERFORM kv_lock_namespace(p_namespace);
    SELECT * INTO v_old FROM kv_entries e WHERE e.namespace = p_namespace AND e.key = p_key;
    v_found := FOUND;

    IF v_found AND (v_old.expires_at IS NULL OR v_old.expires_at > now()) THEN
        -- A JSON integer: no fraction, no exponent; true/false/strings fail here.
        IF length(v_old.value) > p_max_digits + 1 OR v_old.value !~ '^-?(0|[1-9][0-9]*)$' THEN
            status := 'not_integer';
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
        RETURN;
    END IF;

    SELECT r.status, r.used_bytes, r.quota_bytes INTO status, used_bytes, quota_bytes
      FROM kv_reserve(p_namespace, p_key, octet_length(value) - coalesce(v_old.size_bytes, 0),
                      CASE WHEN v_found THEN 0 ELSE 1 END,
                      p_namespace_quota, p_global_quota) r;
    IF status <> 'ok' THEN RETURN; END IF;

    INSERT INTO kv_entries AS e (namespace, key, value, size_bytes, expires_at, updated_at)
    VALUES (p_namespace, p_key, value, octet_length(value), v_expires, now())
    ON CONFLICT (namespace, key) DO UPDATE
       SET value = excluded.value, size_bytes = excluded.size_bytes,
           expires_at = excluded.expires_at, updated_at = excluded.updated_at;
    ttl_seconds := extract(epoch FROM v_expires - now());
END $$;

-- deleted is false for a missing or expired key (an expired one is still
-- removed, and its bytes freed).
CREATE OR REPLACE FUNCTION kv_delete(p_namespace text, p_key text, p_maintain_global boolean, OUT deleted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint;
BEGIN
    deleted := false;
    IF NOT EXISTS (SELECT 1 FROM kv_entries WHERE namespace = p_namespace AND key = p_key) THEN
        RETURN;
    END IF;
    PERFORM kv_lock_namespace(p_namespace);
    DELETE FROM kv_entries e
     WHERE e.namespace = p_namespace AND e.key = p_key
    RETURNING e.size_bytes, (e.expires_at IS NULL OR e.expires_at > now()) INTO v_size, deleted;
    IF NOT FOUND THEN
        deleted := false;
        RETURN;
    END IF;
    PERFORM kv_add_usage(p_namespace, -v_size, -1, p_maintain_global);
END $$;

-- Re-derives the global counter from the namespace counters. The global row
-- is locked before the sum is read, so no writer's change is counted twice
-- or lost.
CREATE OR REPLACE FUNCTION kv_recompute_global_usage() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM kv_global_usage FOR UPDATE;
    UPDATE kv_global_usage
       SET used_bytes = (SELECT coalesce(sum(used_bytes), 0) FROM kv_namespace_usage),
           entry_count = (SELECT coalesce(sum(entry_count), 0) FROM kv_namespace_usage);
END $$;
