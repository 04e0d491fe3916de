-- Versions: every write of a key gives it the next number of its namespace's
-- counter, so a version is never used twice for a key, also after a delete or
-- an expiry. Entries written before versions existed get version 1.
ALTER TABLE kv_entries ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1;
ALTER TABLE kv_entries ALTER COLUMN version DROP DEFAULT;
ALTER TABLE kv_namespace_usage ADD COLUMN IF NOT EXISTS last_version bigint NOT NULL DEFAULT 0;
UPDATE kv_namespace_usage SET last_version = 1 WHERE last_version = 0 AND entry_count > 0;
ALTER TABLE kv_processed_requests ADD COLUMN IF NOT EXISTS version bigint;

-- kv_list pages in key byte order (UTF-8, as COLLATE "C" compares), straight
-- off the primary key's index, whatever the database's default collation.
ALTER TABLE kv_entries ALTER COLUMN key SET DATA TYPE text COLLATE "C";

-- Mutations are applied set-based by the worker's group commit, which locks
-- namespaces with advisory locks: the per-command functions are gone.
SELECT kv_drop_functions(name)
  FROM unnest(ARRAY['kv_lock_namespace', 'kv_add_usage', 'kv_reclaim_expired', 'kv_reserve', 'kv_claim_request',
                    'kv_release_request', 'kv_record_result', 'kv_set', 'kv_increment', 'kv_delete', 'kv_enqueue_event']) AS name;
