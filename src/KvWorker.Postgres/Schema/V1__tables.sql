-- The tables as they stood before migrations were managed by Evolve. Every
-- statement is re-runnable, so a database created by the earlier scripts
-- passes through unchanged.

-- Entries, one row per key.
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

-- Mutations that committed, so a redelivered or retried request gets the
-- first answer and changes nothing. Pruned after a retention period.
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
