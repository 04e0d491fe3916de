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
