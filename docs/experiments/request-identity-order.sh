#!/usr/bin/env bash
# The insert of request identities into a primary key already holding 20,000,000 random UUID texts (a day
# of retained traffic): identities keyed by random UUIDv4 texts against time-ordered (UUIDv7-shaped) ones.
# Each transaction inserts 16 identities, as a group commit does, from 2 connections for 40 s per run;
# runs alternate random, ordered, ordered, random, each after a CHECKPOINT. Prints per run the rate,
# PostgreSQL's CPU per identity (every postgres process, from /proc) and the WAL written per identity.
#   bash docs/experiments/request-identity-order.sh   (about ten minutes; needs scripts/services.sh's PostgreSQL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/services.sh >/dev/null
db=kv_identity_order
psql() { command psql -h 127.0.0.1 -p "${KV_PG_PORT:-5432}" -U postgres -v ON_ERROR_STOP=1 -q "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -d postgres -c "DROP DATABASE IF EXISTS $db"' EXIT

psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -d "$db" <<'SQL'
CREATE TABLE ids (request_id text, operation text, namespace text, key text, request_hash text, result text,
                  ttl_seconds double precision, version bigint, processed_at timestamptz NOT NULL DEFAULT now());
SET maintenance_work_mem = '1GB';
INSERT INTO ids (request_id, operation, namespace, key, request_hash, version, processed_at)
SELECT gen_random_uuid()::text, 'kv_set', 'old-lane' || (i % 64), 'k' || (i % 1000), md5(i::text) || md5((i + 1)::text), i,
       now() - interval '1 hour' + (i / 20000000.0) * interval '1 hour'
  FROM generate_series(1, 20000000) AS i;
ALTER TABLE ids ADD PRIMARY KEY (request_id);
CREATE INDEX ids_age ON ids (processed_at);
VACUUM ANALYZE ids;
SQL

cat > "$work/random.sql" <<'SQL'
INSERT INTO ids (request_id, operation, namespace, key, request_hash, version)
SELECT gen_random_uuid()::text, 'kv_set', 'lane' || (g % 64), 'k' || g, md5(g::text) || md5((g + 1)::text), g
  FROM generate_series(1, 16) g;
SQL
# A UUIDv4 text whose first 12 hex digits are the time: ordered by time, as UUIDv7s are (in microseconds
# here, so that the 16 of one statement differ).
cat > "$work/ordered.sql" <<'SQL'
INSERT INTO ids (request_id, operation, namespace, key, request_hash, version)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || substr(gen_random_uuid()::text, 14), 'kv_set', 'lane' || (g % 64), 'k' || g,
       md5(g::text) || md5((g + 1)::text), g
  FROM generate_series(1, 16) g,
       LATERAL (SELECT lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000000)::bigint + g), 12, '0') AS t) x;
SQL

postgres_ticks() { # clock ticks of every postgres process, and of the ones it has reaped
  local total=0 pid
  for pid in $(pgrep -x postgres); do
    read -r -a f < <(sed 's/.*) //' "/proc/$pid/stat")
    total=$(( total + f[11] + f[12] + f[13] + f[14] ))
  done
  echo "$total"
}
wal() { psql -d "$db" -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"; }

for kind in random ordered ordered random; do
  psql -d "$db" -c CHECKPOINT
  ticks=$(postgres_ticks) bytes=$(wal)
  out=$(pgbench -h 127.0.0.1 -p "${KV_PG_PORT:-5432}" -U postgres -n -c 2 -j 2 -T 40 -f "$work/$kind.sql" "$db" 2>&1)
  ticks=$(( $(postgres_ticks) - ticks )) bytes=$(( $(wal) - bytes ))
  rows=$(( $(echo "$out" | awk '/actually processed/ {print $NF}' | cut -d/ -f1) * 16 ))
  echo "$kind: $(( rows / 40 )) identities/s, PostgreSQL CPU $(( ticks * 10000 / rows )) us and WAL $(( bytes / rows )) bytes per identity"
done
