#!/usr/bin/env bash
# The group commit's write statements on their own, in PostgreSQL, with pgbench: a group of 20 writes
# to 20 namespaces, as upserts (INSERT ... ON CONFLICT DO UPDATE, for entries and counters) and as the
# plain INSERT or UPDATE the group now sends, once for new keys and once for stored ones. Each script
# runs for 10 s on one connection, the four in turn, three times (asynchronous commit, so the disk's
# flush does not hide the statements' work). Prints each script's transactions per second and its
# statements' mean latencies in ms (entries, counters, commit).
#   bash docs/experiments/plain-writes.sh        (about two minutes; needs scripts/services.sh's PostgreSQL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/services.sh >/dev/null
psql() { command psql -h 127.0.0.1 -p "${KV_PG_PORT:-5432}" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -d postgres -c "DROP DATABASE IF EXISTS kv_plain_writes"' EXIT

psql -d postgres -c "DROP DATABASE IF EXISTS kv_plain_writes" -c "CREATE DATABASE kv_plain_writes"
psql -d kv_plain_writes <<'SQL'
CREATE TABLE kv_entries (
    namespace text NOT NULL, key text COLLATE "C" NOT NULL, value text NOT NULL, size_bytes bigint NOT NULL,
    expires_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now(), version bigint NOT NULL,
    PRIMARY KEY (namespace, key));
CREATE INDEX ON kv_entries (namespace, expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE kv_namespace_usage (
    namespace text PRIMARY KEY, used_bytes bigint NOT NULL, entry_count bigint NOT NULL, last_version bigint NOT NULL);
INSERT INTO kv_entries (namespace, key, value, size_bytes, version)
SELECT 'ns-' || (i % 64), 'key-' || i, '{"a":1}', 7, 1 FROM generate_series(0, 199999) i;
INSERT INTO kv_namespace_usage SELECT 'ns-' || i, 7000, 1000, 1000 FROM generate_series(0, 63) i;
CREATE SEQUENCE new_keys;
VACUUM ANALYZE;
SQL

values="array_fill('{\"agent\":\"x\",\"step\":12}'::text, ARRAY[20]), array_fill(22::bigint, ARRAY[20]), array_fill(NULL::float8, ARRAY[20]), array_fill(5::bigint, ARRAY[20])"
counters="array_fill(7044::bigint, ARRAY[20]), array_fill(1000::bigint, ARRAY[20]), array_fill(1001::bigint, ARRAY[20])"
upsert_entries="INSERT INTO kv_entries AS e (namespace, key, value, size_bytes, expires_at, version, updated_at) SELECT w.namespace, w.key, w.value, w.size_bytes, now() + w.ttl * interval '1 second', w.version, now() FROM unnest(:ns::text[], :ks::text[], $values) AS w(namespace, key, value, size_bytes, ttl, version) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, size_bytes = excluded.size_bytes, expires_at = excluded.expires_at, version = excluded.version, updated_at = excluded.updated_at;"
upsert_counters="INSERT INTO kv_namespace_usage AS u (namespace, used_bytes, entry_count, last_version) SELECT * FROM unnest(:ns::text[], $counters) ON CONFLICT (namespace) DO UPDATE SET used_bytes = excluded.used_bytes, entry_count = excluded.entry_count, last_version = excluded.last_version;"
insert_entries="INSERT INTO kv_entries (namespace, key, value, size_bytes, expires_at, version, updated_at) SELECT w.namespace, w.key, w.value, w.size_bytes, now() + w.ttl * interval '1 second', w.version, now() FROM unnest(:ns::text[], :ks::text[], $values) AS w(namespace, key, value, size_bytes, ttl, version);"
update_entries="UPDATE kv_entries e SET value = w.value, size_bytes = w.size_bytes, expires_at = now() + w.ttl * interval '1 second', version = w.version, updated_at = now() FROM unnest(:ns::text[], :ks::text[], $values) AS w(namespace, key, value, size_bytes, ttl, version) WHERE e.namespace = w.namespace AND e.key = w.key;"
update_counters="UPDATE kv_namespace_usage u SET used_bytes = c.used_bytes, entry_count = c.entry_count, last_version = c.last_version FROM unnest(:ns::text[], $counters) AS c(namespace, used_bytes, entry_count, last_version) WHERE u.namespace = c.namespace;"

# $1: script name, $2: highest random number, $3: key expression, $4 and $5: the two write statements.
script() {
    cat > "$work/$1.sql" <<EOF
\set r random(0, $2)
SELECT array_agg('ns-' || ((:r + i) % 64)) AS ns, array_agg($3) AS ks FROM generate_series(1, 20) i \gset
BEGIN;
$4
$5
COMMIT;
EOF
}
script new-keys-upsert 1000000000 "'new-' || nextval('new_keys')" "$upsert_entries" "$upsert_counters"
script new-keys-plain 1000000000 "'new-' || nextval('new_keys')" "$insert_entries" "$update_counters"
script stored-keys-upsert 199900 "'key-' || (:r + i)" "$upsert_entries" "$upsert_counters"
script stored-keys-plain 199900 "'key-' || (:r + i)" "$update_entries" "$update_counters"

printf '%-6s %-19s %10s %9s %9s %9s\n' round script tps entries counters commit
for round in 1 2 3; do
    for name in new-keys-upsert new-keys-plain stored-keys-upsert stored-keys-plain; do
        out=$(PGOPTIONS="-c synchronous_commit=off" pgbench -h 127.0.0.1 -p "${KV_PG_PORT:-5432}" -U postgres -n -c 1 -T 10 \
                  -M prepared -r -f "$work/$name.sql" kv_plain_writes 2>&1) || { echo "$out" >&2; exit 1; }
        awk -v round="$round" -v name="$name" '
            /^tps/ { tps = $3 }
            /^ +[0-9.]+ +[0-9]+ +(INSERT|UPDATE|COMMIT)/ { latency[++n] = $1 }
            END { printf "%-6s %-19s %10.0f %9s %9s %9s\n", round, name, tps, latency[1], latency[2], latency[3] }' <<< "$out"
    done
done
