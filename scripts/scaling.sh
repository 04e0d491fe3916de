#!/usr/bin/env bash
# Throughput for docs/scaling.md, measured on this machine: kv_increment and kv_get
# with 1, 2 and 3 worker replicas, against one RabbitMQ node (classic queues, every
# connection on node 1) and against the 3-node cluster (quorum queues, connections
# spread over the nodes); PostgreSQL under pg_auto_failover with its synchronous
# standby in both. Prints a markdown table of the medians over SCALING_RUNS runs: requests
# per second, and the CPU each request cost RabbitMQ (its three nodes), PostgreSQL (the
# primary's and the standby's processes) and the replicas, from /proc over each whole run.
# Uses the rig of scripts/cluster/engines.sh (brought up afresh, torn down after).
#   bash scripts/scaling.sh   (SCALING_SECONDS=8 SCALING_RUNS=3 SCALING_IN_FLIGHT=64; KVC_KEEP=1 leaves the engines up)
# A subset: SCALING_SETUPS="single cluster", SCALING_REPLICAS="1 2 3", SCALING_OPERATIONS="increment get".
# SCALING_VARIANT="NAME=VALUE ..." (environment settings of the replicas) measures each cell twice per
# run, as shipped and with those settings, in turn, and adds a row for the variant.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=cluster/engines.sh
source scripts/cluster/engines.sh
[ "$(id -u)" -eq 0 ] || { echo "scaling.sh: run as root (the engines run as root and postgres)" >&2; exit 1; }
SECONDS_PER_RUN=${SCALING_SECONDS:-8} RUNS=${SCALING_RUNS:-3} IN_FLIGHT=${SCALING_IN_FLIGHT:-64}
SETUPS=${SCALING_SETUPS:-single cluster} REPLICA_COUNTS=${SCALING_REPLICAS:-1 2 3}
OPERATIONS=${SCALING_OPERATIONS:-increment get}
variants=("")
[ -z "${SCALING_VARIANT:-}" ] || variants+=("$SCALING_VARIANT")
WORKER_DLL="$(pwd)/src/KvWorker/bin/Release/net10.0/KvWorker.dll"

replicas=()
teardown() {
  [ ${#replicas[@]} -eq 0 ] || kvc__stop_pids 30 "${replicas[@]}"
  [ "${KVC_KEEP:-0}" = 1 ] && return
  kvc_rmq_down || true
  kvc_pg_down || true
}
trap teardown EXIT

kvc_timed "rabbitmq up (3 nodes)" kvc_rmq_up
kvc_timed "postgres up (monitor, primary, sync secondary)" kvc_pg_up
kvc__log "building the worker and the load"
dotnet build src/KvWorker -c Release -v quiet -nologo >/dev/null
dotnet build scripts/scaling/load.cs -c Release -v quiet -nologo >/dev/null

# consumers VHOST: consumers of kv_increment in VHOST.
consumers() {
  kvc_rmq_ctl 1 list_queues -p "$1" name consumers --no-table-headers -q 2>/dev/null | awk '$1 == "kv_increment" { print $2 }'
}

# start_replicas N VHOST HOSTS QUEUE_TYPE [SETTINGS]: N workers, waiting until all consume.
start_replicas() {
  local n=$1 vhost=$2 hosts=$3 type=$4 settings=${5:-} i
  for ((i = 0; i < n; i++)); do
    # shellcheck disable=SC2086 # SETTINGS is a list of NAME=VALUE words
    (cd "$(dirname "$WORKER_DLL")" && exec env ATLAS_KV_STORE_URL="$(kvc_pg_url)" RabbitMq__Hosts="$hosts" \
      RabbitMq__VirtualHost="$vhost" RabbitMq__Username="$KVC_RMQ_USER" RabbitMq__Password="$KVC_RMQ_PASS" \
      RabbitMq__QueueType="$type" Serilog__MinimumLevel__Default=Warning DOTNET_ENVIRONMENT=Development \
      "tools__kv_store__identities__${KVC_RMQ_USER}__personas__0=developer" \
      "tools__kv_store__identities__${KVC_RMQ_USER}__default_persona=developer" $settings \
      dotnet "$WORKER_DLL" >>"$KVC_BASE/scaling-workers.log" 2>&1) &
    replicas+=($!)
  done
  kvc__wait 90 "$n consumers on kv_increment" eval "[ \"\$(consumers $vhost)\" = $n ]"
}

# cpu_ticks PID...: user + system clock ticks used so far by those processes.
cpu_ticks() {
  local pid ticks=0 stat
  for pid in "$@"; do
    read -r stat 2>/dev/null <"/proc/$pid/stat" || continue
    stat=${stat##*) }   # past "pid (comm) "
    read -r _ _ _ _ _ _ _ _ _ _ _ utime stime _ <<<"$stat"
    ticks=$((ticks + utime + stime))
  done
  echo "$ticks"
}

# PostgreSQL's processes on the data nodes: their postmasters and every child (backends, WAL sender and receiver).
postgres_pids() {
  local port pid f ppid rest
  local -A postmasters=()
  for port in "$(kvc_pg_port 1)" "$(kvc_pg_port 2)"; do
    for pid in $(kvc__port_pids "$port"); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] && postmasters[$pid]=1 && echo "$pid"
    done
  done
  for f in /proc/[0-9]*/stat; do
    read -r rest 2>/dev/null <"$f" || continue
    read -r _ ppid _ <<<"${rest##*) }"
    [ -n "${postmasters[$ppid]:-}" ] && echo "${f//[^0-9]/}"
  done
  return 0
}

rabbitmq_pids() { local i; for i in 1 2 3; do kvc__rmq_vm_pids "$i"; done; }

# measure URLS OPERATION: one run of the load; prints "req/s rabbitmq-us postgres-us replicas-us" (CPU per request).
measure() {
  local groups=(rabbitmq_pids postgres_pids) before=() after=() out rate total i
  local -a pids
  for i in 0 1; do mapfile -t pids < <("${groups[$i]}"); before+=("$(cpu_ticks "${pids[@]}")"); done
  before+=("$(cpu_ticks "${replicas[@]}")")
  out=$(dotnet run -c Release --no-build scripts/scaling/load.cs -- "$1" "$SECONDS_PER_RUN" "$IN_FLIGHT" "$2")
  for i in 0 1; do mapfile -t pids < <("${groups[$i]}"); after+=("$(cpu_ticks "${pids[@]}")"); done
  after+=("$(cpu_ticks "${replicas[@]}")")
  read -r rate total <<<"$out"
  printf '%s' "$rate"
  for i in 0 1 2; do printf ' %s' $(( (after[i] - before[i]) * 1000000 / TICKS / total )); done
  echo
}
TICKS=$(getconf CLK_TCK)

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# column_median KEY N: the median of field N of the runs measured under KEY (variant:operation).
column_median() { printf '%s' "${results[$1]}" | cut -d' ' -f"$2" | median; }

rows=()
for setup in $SETUPS; do
  vhost="kvscale-$setup"
  kvc_rmq_ctl 1 add_vhost "$vhost" >/dev/null
  kvc_rmq_ctl 1 set_permissions -p "$vhost" "$KVC_RMQ_USER" '.*' '.*' '.*' >/dev/null
  if [ "$setup" = single ]; then
    hosts="127.0.0.1:$(kvc_rmq_port 1)" type=classic urls="$(kvc_rmq_url 1 | sed "s|/$KVC_RMQ_VHOST\$|/$vhost|")"
  else
    hosts="$(kvc_rmq_hosts)" type=quorum urls="$(kvc_rmq_urls | sed "s|/$KVC_RMQ_VHOST\$|/$vhost|" | paste -sd,)"
  fi
  for n in $REPLICA_COUNTS; do
    declare -A results=()
    # With a variant, each run starts the replicas afresh for each, in turn, so both see the same hour.
    for ((run = 1; run <= RUNS; run++)); do
      for v in "${!variants[@]}"; do
        [ ${#replicas[@]} -gt 0 ] || start_replicas "$n" "$vhost" "$hosts" "$type" "${variants[$v]}"
        for operation in $OPERATIONS; do results[$v:$operation]+="$(measure "$urls" "$operation")"$'\n'; done
        if [ ${#variants[@]} -gt 1 ]; then kvc__stop_pids 30 "${replicas[@]}"; replicas=(); fi
      done
    done
    for v in "${!variants[@]}"; do
      row="| $([ "$setup" = single ] && echo "1 node, classic queues" || echo "3 nodes, quorum queues") | $n${variants[$v]:+, ${variants[$v]}} |"
      for operation in increment get; do
        if [[ " $OPERATIONS " != *" $operation "* ]]; then row="$row | |"; continue; fi
        kvc__log "$setup, $n replicas${variants[$v]:+, ${variants[$v]}}, kv_$operation (req/s, CPU us per request of RabbitMQ, PostgreSQL, replicas): $(printf '%s' "${results[$v:$operation]}" | paste -sd';')"
        row="$row $(column_median "$v:$operation" 1) | $(column_median "$v:$operation" 2) / $(column_median "$v:$operation" 3) / $(column_median "$v:$operation" 4) |"
      done
      rows+=("$row")
    done
    [ ${#replicas[@]} -eq 0 ] || kvc__stop_pids 30 "${replicas[@]}"
    replicas=()
    unset results
  done
done

echo "| RabbitMQ | replicas | kv_increment req/s | CPU µs per kv_increment: RabbitMQ / PostgreSQL / replicas | kv_get req/s | CPU µs per kv_get |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
echo "medians of $RUNS runs of ${SECONDS_PER_RUN} s, $IN_FLIGHT requests in flight; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
