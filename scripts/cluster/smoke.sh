#!/usr/bin/env bash
# Brings up the clustered engines of engines.sh, exercises each, injects the
# basic faults (RabbitMQ leader stopped and killed, PostgreSQL failover), prints
# the measured seconds of every step and tears everything down.
# KVC_KEEP=1 leaves the engines running at the end (for poking around).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=engines.sh
source "$HERE/engines.sh"
PROBE=(/usr/bin/python3 "$HERE/amqp_probe.py" --timeout 60)

[ "$(id -u)" -eq 0 ] || { echo "smoke.sh: run as root" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kvc-smoke.XXXXXX)
export KVC_TIMINGS_FILE="$WORK/timings"
: >"$KVC_TIMINGS_FILE"
smoke_start=$SECONDS

say() { printf '\n== %s\n' "$*" >&2; }
fail() { printf 'SMOKE FAILED: %s\n' "$*" >&2; exit 1; }
record() { printf '%s %s\n' "$1" "$2" >>"$KVC_TIMINGS_FILE"; kvc__log "$1: $2 s"; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "${KVC_KEEP:-0}" != 1 ]; then
    echo "smoke.sh: failed (status $rc); tearing down" >&2
    kvc_down_all || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say "install (when absent) and bring up"
kvc_install || fail "package installation"
kvc_timed "rabbitmq up (3 nodes)" kvc_rmq_up || fail "rabbitmq cluster"
kvc_timed "postgres up (monitor, primary, sync secondary)" kvc_pg_up || fail "pg_auto_failover"
kvc_timed "redis up (3 primaries)" kvc_redis_up || fail "redis cluster"

# ------------------------------------------------------------------ RabbitMQ
say "rabbitmq: quorum queues declared through every node"
for i in 1 2 3; do
  "${PROBE[@]}" declare "$(kvc_rmq_url "$i")" kvc.smoke >/dev/null || fail "declare through node $i"
  "${PROBE[@]}" declare "$(kvc_rmq_url "$i")" "kvc.smoke.$i" >/dev/null || fail "declare kvc.smoke.$i"
  kvc__log "kvc.smoke.$i declared through $(kvc_rmq_node "$i"), led by $(kvc_rmq_queue_leader "kvc.smoke.$i")"
done
kvc_rmq_ctl 1 list_queues -p "$KVC_RMQ_VHOST" name type leader members --no-table-headers -q >&2

say "rabbitmq: publish through node 1, consume through node 3"
"${PROBE[@]}" publish "$(kvc_rmq_url 1)" kvc.smoke 200 >/dev/null || fail "publish"
result=$("${PROBE[@]}" consume "$(kvc_rmq_url 3)" kvc.smoke --expect 200) || fail "consume: $result"
kvc__log "$result"

say "rabbitmq: RPC, worker on node 1, clients on nodes 2 and 3"
"${PROBE[@]}" rpc-server "$(kvc_rmq_url 1)" kvc.smoke.rpc --requests 400 >"$WORK/rpc-server.out" 2>/dev/null &
rpc_server=$!
result=$("${PROBE[@]}" rpc-client "$(kvc_rmq_url 2)" kvc.smoke.rpc --requests 200 --reply direct) || fail "direct reply-to: $result"
kvc__log "$result"
result=$("${PROBE[@]}" rpc-client "$(kvc_rmq_url 3)" kvc.smoke.rpc --requests 200 --reply exclusive) || fail "exclusive reply queue: $result"
kvc__log "$result"
wait "$rpc_server" || fail "rpc server: $(cat "$WORK/rpc-server.out")"

# rmq_leader_fault stop|kill: take down the leader of kvc.smoke while a client
# on the other nodes publishes with confirms; every confirmed message must be
# consumable afterwards. Records the leader change and the client's worst gap.
rmq_leader_fault() {
  local how=$1 leader idx urls t0 new result gap confirmed j
  leader=$(kvc_rmq_queue_leader kvc.smoke) || fail "kvc.smoke has no leader"
  idx=$(kvc_rmq_index "$leader")
  urls=$(for j in 1 2 3; do [ "$j" = "$idx" ] || kvc_rmq_url "$j"; done | paste -sd,)
  "${PROBE[@]}" availability "$urls" kvc.smoke --seconds 9 --ids-file "$WORK/confirmed" >"$WORK/avail.out" 2>"$WORK/avail.err" &
  local probe=$!
  sleep 2
  t0=$(kvc__now)
  if [ "$how" = stop ]; then kvc_rmq_stop_node "$idx"; else kvc_rmq_kill_node "$idx"; fi
  new=$(kvc_rmq_wait_new_leader kvc.smoke "$leader" 60) || fail "no new leader after $how of $leader"
  record "rabbitmq leader change after $how of the leader (CLI view)" "$(kvc__since "$t0")"
  wait "$probe" || fail "availability probe: $(cat "$WORK/avail.out" "$WORK/avail.err")"
  result=$(cat "$WORK/avail.out")
  gap=$(field max_gap_seconds "$result"); confirmed=$(field confirmed "$result")
  record "rabbitmq longest publish-confirm gap, leader $how" "$gap"
  kvc__log "leader $leader -> $new; probe: $result"
  result=$("${PROBE[@]}" consume "$(kvc_rmq_url "$(kvc_rmq_index "$new")")" kvc.smoke --expect "$confirmed" \
    --ids-file "$WORK/consumed") || fail "after $how: $result"
  [ -z "$(comm -23 <(sort "$WORK/confirmed") <(sort "$WORK/consumed"))" ] || fail "confirmed messages lost after $how"
  kvc__log "all $confirmed confirmed messages consumed through $new"
  kvc_timed "rabbitmq node restart after $how" kvc_rmq_start_node "$idx" || fail "restart $leader"
}

say "rabbitmq: stop the leader of kvc.smoke cleanly, start it again"
rmq_leader_fault stop
say "rabbitmq: kill -9 the leader of kvc.smoke, start it again"
rmq_leader_fault kill
kvc_rmq_ctl 1 list_queues -p "$KVC_RMQ_VHOST" name leader online --no-table-headers -q >&2

# ---------------------------------------------------------------- PostgreSQL
say "postgres: synchronous replication, multi-host URL"
sync=$(kvc_pg_check_sync) || fail "replication is not synchronous"
kvc__log "synchronous_standby_names|sync_state of the standbys: $sync"
kvc_pg_settings >&2
kvc__log "libpq:  $(kvc_pg_url)"
kvc__log "Npgsql: $(kvc_pg_npgsql)"
kvc_pg_psql -c "CREATE TABLE smoke (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())" || fail "create table"
before=$(kvc_pg_psql -c "SELECT inet_server_port()")

# A writer commits one row at a time through the URL across a failover; every
# row it saw committed must be there afterwards.
start_writer() {   # FIRST_ID
  rm -f "$WORK/stop-writer"; : >"$WORK/committed"
  (
    i=$1
    while [ ! -e "$WORK/stop-writer" ]; do
      kvc_pg_psql -c "INSERT INTO smoke (id) VALUES ($i)" >/dev/null 2>&1 && echo "$i" >>"$WORK/committed"
      i=$((i + 1))
      sleep 0.02
    done
  ) &
  writer_pid=$!
  sleep 1
}
check_writer() {   # WHAT
  local committed present
  sleep 1
  touch "$WORK/stop-writer"; wait "$writer_pid"
  committed=$(wc -l <"$WORK/committed")
  [ "$committed" -gt 0 ] || fail "the writer committed nothing"
  present=$(kvc_pg_psql -c "SELECT count(*) FROM smoke WHERE id IN ($(paste -sd, "$WORK/committed"))")
  [ "$present" = "$committed" ] || fail "$committed rows committed, $present found after the $1"
  kvc__log "all $committed rows committed across the $1 read back"
}

say "postgres: pg_autoctl perform failover under a writer"
start_writer 1
secs=$(kvc_pg_failover) || fail "failover"
record "postgres perform failover: writes on the new primary after" "$secs"
check_writer "failover"
after=$(kvc_pg_psql -c "SELECT inet_server_port()")
[ "$before" != "$after" ] || fail "the URL reached port $before before and after the failover"
kvc__log "the URL reached the primary on $before, then on $after"

say "postgres: kill -9 the primary under a writer, start it again"
start_writer 100000
old=$(kvc_pg_primary_port)
t0=$(kvc__now)
kvc_pg_kill_node $((old - KVC_PG_PORT_BASE)) || fail "kill the primary"
until new=$(kvc__pg_writable_port) && [ "$new" != "$old" ]; do
  (($(awk -v a="$t0" -v b="$(kvc__now)" 'BEGIN { print int(b - a) }') < 90)) || fail "no new primary after the kill"
  sleep 0.1
done
record "postgres primary killed: writes on the other node after" "$(kvc__since "$t0")"
check_writer "crash of the primary"
kvc_timed "postgres killed node back as secondary" kvc_pg_start_node $((old - KVC_PG_PORT_BASE)) || fail "restart"
kvc_pg_check_sync >/dev/null || fail "replication not synchronous after the restart"
kvc_pg_state >&2

# ------------------------------------------------------------- Redis Cluster
say "redis: keys spread over the primaries, read back with redis-cli -c"
for i in $(seq 1 30); do
  [ "$(kvc_redis_cli set "{ns$i}:key" "v$i")" = OK ] || fail "SET {ns$i}:key"
done
for i in $(seq 1 30); do
  [ "$(kvc_redis_cli get "{ns$i}:key")" = "v$i" ] || fail "GET {ns$i}:key"
done
spread=$(for i in 1 2 3; do redis-cli -p "$(kvc_redis_port "$i")" dbsize; done | paste -sd' ')
[ "$(tr ' ' '\n' <<<"$spread" | awk '$1 > 0' | wc -l)" -ge 2 ] || fail "keys all on one node: $spread"
kvc__log "30 keys set and read back; keys per primary: $spread"

# -------------------------------------------------------------------- down
if [ "${KVC_KEEP:-0}" = 1 ]; then
  say "KVC_KEEP=1: engines left running under $KVC_BASE"
else
  say "tear down"
  kvc_down_all || fail "teardown"
  for port in $(kvc_rmq_port 1) $(kvc_rmq_port 3) "$KVC_EPMD_PORT" "$(kvc_pg_port 0)" "$(kvc_pg_port 2)" "$(kvc_redis_port 1)"; do
    kvc__listening "$port" && fail "port $port still in use after teardown"
  done
  [ ! -e "$KVC_BASE" ] || fail "$KVC_BASE still exists"
fi

say "measured seconds"
awk '{ s = $NF; $NF = ""; printf "  %-62s %6s\n", $0, s }' "$KVC_TIMINGS_FILE"
printf '  %-62s %6s\n' "smoke total" "$((SECONDS - smoke_start))"
echo "smoke: passed"
