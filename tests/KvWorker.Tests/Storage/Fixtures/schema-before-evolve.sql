-- Entries and the usage counters that make quota checks O(1) per write.
-- Every statement is re-runnable.

CREATE TABLE IF NOT EXISTS kv_entries (
    namespace   text        NOT NULL,
    key         text        NOT NULL,
    -- Compact JSON text exactly as it is returned; text (not jsonb) so that
    -- escapes jsonb rejects, such as \u0000, round-trip.
    value       text        NOT NULL,
    -- UTF-8 bytes of value: the figure quotas count.
    size_bytes  bigint      NOT NULL,
    expires_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, key)
);

CREATE INDEX IF NOT EXISTS kv_entries_namespace_expiry
    ON kv_entries (namespace, expires_at) WHERE expires_at IS NOT NULL;

CREATE INDEX IF NOT EXISTS kv_entries_expiry
    ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;

-- One row per namespace: bytes and entries stored, expired-but-unpurged
-- entries included. Every change to kv_entries locks its namespace's row
-- first, which serialises writers of one namespace and makes quotas exact.
CREATE TABLE IF NOT EXISTS kv_namespace_usage (
    namespace   text   PRIMARY KEY,
    used_bytes  bigint NOT NULL DEFAULT 0,
    entry_count bigint NOT NULL DEFAULT 0
);

-- The sum over all namespaces, maintained only while a global quota is
-- configured (a single hot row would otherwise serialise every write).
CREATE TABLE IF NOT EXISTS kv_global_usage (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    used_bytes  bigint  NOT NULL DEFAULT 0,
    entry_count bigint  NOT NULL DEFAULT 0
);

INSERT INTO kv_global_usage (id) VALUES (true) ON CONFLICT DO NOTHING;
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
-- Exactly-once mutations, quota threshold events and the event outbox.
-- The mutation functions of 002 are replaced by versions that take the
-- request's identity and the quota thresholds. Every statement is re-runnable.

-- Mutations that committed, so a redelivered or retried request gets the
-- original answer and changes nothing. Pruned after a retention period.
CREATE TABLE IF NOT EXISTS kv_processed_requests (
    request_id   text        PRIMARY KEY,
    -- The parts of the first answer that depend on state at the time: the new
    -- value of an increment, or 'true'/'false' for a delete.
    result       text,
    ttl_seconds  double precision,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS kv_processed_requests_age ON kv_processed_requests (processed_at);

-- Events about committed changes, written in the transaction that made the
-- change and published by whichever worker drains the row.
CREATE TABLE IF NOT EXISTS kv_outbox (
    id          bigserial   PRIMARY KEY,
    event_type  text        NOT NULL,
    payload     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

DROP FUNCTION IF EXISTS kv_set(text, text, text, bigint, double precision, bigint, bigint);
DROP FUNCTION IF EXISTS kv_increment(text, text, numeric, numeric, double precision, bigint, bigint, integer);
DROP FUNCTION IF EXISTS kv_delete(text, text, boolean);
DROP FUNCTION IF EXISTS kv_reserve(text, text, bigint, bigint, bigint, bigint);

-- True when the request is new and the caller should apply it; false when it
-- was applied before. A concurrent duplicate waits here for the first to
-- commit (then sees it) or roll back (then applies it itself).
CREATE OR REPLACE FUNCTION kv_claim_request(p_request_id text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_request_id IS NULL THEN
        RETURN true;
    END IF;
    INSERT INTO kv_processed_requests (request_id) VALUES (p_request_id) ON CONFLICT DO NOTHING;
    RETURN FOUND;
END $$;

-- A rejected request is not recorded: a retry is judged afresh.
CREATE OR REPLACE FUNCTION kv_release_request(p_request_id text) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM kv_processed_requests WHERE request_id = p_request_id;
$$;

CREATE OR REPLACE FUNCTION kv_record_result(p_request_id text, p_result text, p_ttl_seconds double precision) RETURNS void
LANGUAGE sql AS $$
    UPDATE kv_processed_requests SET result = p_result, ttl_seconds = p_ttl_seconds WHERE request_id = p_request_id;
$$;

CREATE OR REPLACE FUNCTION kv_enqueue_event(p_event_type text, p_payload json) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO kv_outbox (event_type, payload) VALUES (p_event_type, p_payload::text);
$$;

-- As in 002, and each reclaim is reported like a purge.
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
        PERFORM kv_enqueue_event('KvEntriesExpired', json_build_object(
            'namespace', p_namespace, 'count', v_count, 'bytes_freed', v_bytes, 'at', now()));
    END IF;
    RETURN v_bytes;
END $$;

-- Admits a change of p_delta_bytes to a namespace whose row the caller has
-- locked, and books it. status: 'ok', 'namespace_quota' or 'global_quota';
-- used_bytes and quota_bytes are the figures of the quota that decided.
-- Each threshold (a fraction of the namespace quota) that the new usage
-- reaches from below queues one NamespaceQuotaThresholdReached. Crossings are
-- judged under the namespace lock, so exactly one writer sees each; usage
-- falling back below a threshold re-arms it.
CREATE OR REPLACE FUNCTION kv_reserve(
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

-- status: 'ok', 'replayed' (applied before; nothing changed), or a quota
-- status from kv_reserve.
CREATE OR REPLACE FUNCTION kv_set(
    p_namespace text, p_key text, p_value text, p_size bigint, p_ttl_seconds double precision,
    p_namespace_quota bigint, p_global_quota bigint, p_thresholds double precision[], p_request_id text,
    OUT status text, OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old_size bigint;
BEGIN
    IF NOT kv_claim_request(p_request_id) THEN
        status := 'replayed';
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

-- status: 'ok', 'replayed' (value and ttl_seconds are the first answer's),
-- 'not_integer' (the live value is not a JSON integer), 'too_large' (past
-- p_max_digits), or a quota status from kv_reserve.
CREATE OR REPLACE FUNCTION kv_increment(
    p_namespace text, p_key text, p_delta numeric, p_initial numeric, p_ttl_seconds double precision,
    p_namespace_quota bigint, p_global_quota bigint, p_thresholds double precision[], p_max_digits integer,
    p_request_id text,
    OUT status text, OUT value text, OUT ttl_seconds double precision,
    OUT used_bytes bigint, OUT quota_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old kv_entries%ROWTYPE;
    v_found boolean;
    v_new numeric;
    v_expires timestamptz;
BEGIN
    IF NOT kv_claim_request(p_request_id) THEN
        SELECT r.result, r.ttl_seconds INTO value, ttl_seconds FROM kv_processed_requests r WHERE r.request_id = p_request_id;
        status := 'replayed';
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

-- deleted is false for a missing or expired key (an expired one is still
-- removed, and its bytes freed); a replayed delete answers as the first did.
CREATE OR REPLACE FUNCTION kv_delete(
    p_namespace text, p_key text, p_maintain_global boolean, p_request_id text, OUT deleted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint;
BEGIN
    IF NOT kv_claim_request(p_request_id) THEN
        SELECT r.result::boolean INTO deleted FROM kv_processed_requests r WHERE r.request_id = p_request_id;
        RETURN;
    END IF;
    deleted := false;
    IF EXISTS (SELECT 1 FROM kv_entries WHERE namespace = p_namespace AND key = p_key) THEN
        PERFORM kv_lock_namespace(p_namespace);
        DELETE FROM kv_entries e
         WHERE e.namespace = p_namespace AND e.key = p_key
        RETURNING e.size_bytes, (e.expires_at IS NULL OR e.expires_at > now()) INTO v_size, deleted;
        IF FOUND THEN
            PERFORM kv_add_usage(p_namespace, -v_size, -1, p_maintain_global);
        ELSE
            deleted := false;
        END IF;
    END IF;
    PERFORM kv_record_result(p_request_id, deleted::text, NULL);
END $$;

-- Removes up to p_limit expired entries, earliest expiry first, in the
-- caller's (short) transaction, and queues one KvEntriesExpired per namespace.
-- Namespace rows are locked in sorted order before the global row, the same
-- order every writer uses, so purges and writes cannot deadlock.
CREATE OR REPLACE FUNCTION kv_purge_expired(p_limit integer, p_maintain_global boolean)
RETURNS TABLE (purged_namespace text, purged_entries bigint, purged_bytes bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_namespaces text[];
BEGIN
    SELECT array_agg(DISTINCT c.namespace) INTO v_namespaces
      FROM (SELECT e.namespace FROM kv_entries e WHERE e.expires_at <= now() ORDER BY e.expires_at LIMIT p_limit) c;
    IF v_namespaces IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM kv_namespace_usage u WHERE u.namespace = ANY (v_namespaces) ORDER BY u.namespace COLLATE "C" FOR UPDATE;
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
-- Group commit: a group that writes several namespaces locks them all first,
-- in sorted order, before any command takes the global usage row.

CREATE OR REPLACE FUNCTION kv_lock_namespaces(p_namespaces text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_namespace text;
BEGIN
    FOR v_namespace IN SELECT n FROM unnest(p_namespaces) AS n ORDER BY n COLLATE "C" LOOP
        PERFORM kv_lock_namespace(v_namespace);
    END LOOP;
END $$;
