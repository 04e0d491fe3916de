# shellcheck shell=bash
# Clustered engines on one machine, for fault tests: a 3-node RabbitMQ cluster,
# PostgreSQL under pg_auto_failover (monitor + primary + synchronous secondary)
# and a 3-primary Redis Cluster, each on ports of its own, with data under
# $KVC_BASE. Source this file; it only defines functions and default settings.
# See scripts/cluster/README.md for the contract of each function.
#
# Conventions: progress and timings go to stderr as "[kvcluster] ..." lines;
# values a caller asks for (URLs, node names, seconds) go to stdout. Every
# function returns non-zero on failure and never exits the caller's shell.
# Must run as root (processes run as root, PostgreSQL as the postgres user).

: "${KVC_BASE:=/var/tmp/kvcluster}"
: "${KVC_TIMEOUT:=120}"                 # seconds any single wait may take
: "${KVC_TIMINGS_FILE:=}"               # when set, kvc_timed appends "label seconds" lines

# RabbitMQ: nodes kvc1..kvc3@localhost, AMQP and Erlang distribution each on
# a base+i, a private epmd (never the shared one on 4369) and a private cookie.
: "${KVC_EPMD_PORT:=16369}"
: "${KVC_RMQ_PORT_BASE:=16720}"        # AMQP 16721..16723
: "${KVC_RMQ_DIST_BASE:=16730}"        # Erlang distribution 16731..16733
: "${KVC_RMQ_CTL_DIST_MIN:=16740}"     # CLI tools' distribution ports 16740..16759
: "${KVC_RMQ_VHOST:=kvcluster}"
: "${KVC_RMQ_USER:=kvworker}"
: "${KVC_RMQ_PASS:=kvworker}"
: "${KVC_RMQ_ERL_ARGS:=+S 1:1 +SDio 2 +A 8}"   # frugal schedulers: 3 nodes share 2 cores

# PostgreSQL: monitor on base, data nodes on base+1 and base+2.
: "${KVC_PG_PORT_BASE:=16810}"         # monitor 16810, node1 16811, node2 16812
: "${KVC_PG_BIN:=/usr/lib/postgresql/15/bin}"
: "${KVC_PG_USER:=kvworker}"
: "${KVC_PG_PASS:=kvworker}"
: "${KVC_PG_DB:=kvworker}"
: "${KVC_PG_FAST_FAILOVER:=1}"        # short health checks and demote timeout (test rig)

# Redis Cluster: three primaries on base+i (cluster bus on port+10000).
: "${KVC_REDIS_PORT_BASE:=16900}"      # 16901..16903, bus 26901..26903
: "${KVC_REDIS_REPLICAS:=0}"           # 1: a replica per primary, nodes 16904..16906

KVC_RMQ_NODES=3
KVC_RMQ_SBIN=/usr/lib/rabbitmq/bin

# ---------------------------------------------------------------- common ----

kvc__log() { printf '[kvcluster] %s\n' "$*" >&2; }

kvc__now() { local t=$EPOCHREALTIME; printf '%s' "${t/,/.}"; }

# kvc__since START: seconds since START (from kvc__now), one decimal.
kvc__since() { awk -v a="$1" -v b="$(kvc__now)" 'BEGIN { printf "%.1f", b - a }'; }

kvc__listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# kvc__port_pids PORT: pids of processes listening on PORT (tcp), one a line.
kvc__port_pids() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# Every process the rig starts carries KVC_RIG=$KVC_BASE/<engine> in its
# environment, and so do their children; a teardown sweeps whatever still
# carries it, even when pid files are gone or a supervisor died and left its
# helpers behind. Readable for the Erlang VM, epmd, pg_autoctl and its helpers
# and PostgreSQL's postmaster; Redis and PostgreSQL's backends overwrite it with
# their process titles, so for those the pid files and ports remain the way in.
# kvc__rig_pids ENGINE: pids of live processes marked for ENGINE.
kvc__rig_pids() {
  grep -lzxF -- "KVC_RIG=$KVC_BASE/$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 |
    grep -vx -e "$$" -e "$BASHPID"   # never the calling shell, whatever its environment
  return 0
}

# kvc__sweep ENGINE: SIGTERM what is left of ENGINE's processes, SIGKILL after 5 s.
kvc__sweep() {
  local pids
  pids=$(kvc__rig_pids "$1")
  # shellcheck disable=SC2086  # one pid a word
  [ -z "$pids" ] || kvc__stop_pids 5 $pids
}

# kvc__session_pids SID: pids of the processes in session SID (from /proc, as
# procps may be absent).
kvc__session_pids() {
  local f stat pid _s1 _s2 _s3 sid
  for f in /proc/[0-9]*/stat; do
    read -r stat 2>/dev/null <"$f" || continue   # the process may be gone already
    pid=${stat%% *}
    read -r _s1 _s2 _s3 sid _ <<<"${stat##*) }"   # state ppid pgrp session ...
    [ "$sid" = "$1" ] && echo "$pid"
  done
  return 0
}

kvc__alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# kvc__ours PID ENGINE: PID is alive and carries ENGINE's mark (a pid from a
# stale pid file may belong to anything by now).
kvc__ours() { kvc__alive "$1" && grep -qzxF -- "KVC_RIG=$KVC_BASE/$2" "/proc/$1/environ" 2>/dev/null; }

# kvc__stop_pids GRACE PID...: SIGTERM, wait up to GRACE seconds, then SIGKILL.
kvc__stop_pids() {
  local grace=$1 pid left i; shift
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < grace * 5; i++)); do
    left=""
    for pid in "$@"; do kvc__alive "$pid" && left=1; done
    [ -n "$left" ] || return 0
    sleep 0.2
  done
  kill -KILL "$@" 2>/dev/null || true
  sleep 0.2
  return 0
}

# kvc__wait TIMEOUT DESCRIPTION CMD...: poll CMD until it succeeds.
kvc__wait() {
  local timeout=$1 what=$2 start; shift 2
  start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      kvc__log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.3
  done
}

# kvc_timed LABEL CMD...: run CMD, log "LABEL: N.N s" (and append it to
# $KVC_TIMINGS_FILE when set); returns CMD's status. CMD's stdout passes through.
kvc_timed() {
  local label=$1 start rc secs; shift
  start=$(kvc__now)
  "$@" && rc=0 || rc=$?
  secs=$(kvc__since "$start")
  kvc__log "$label: ${secs} s$([ "$rc" -eq 0 ] || echo " (failed, status $rc)")"
  [ -z "$KVC_TIMINGS_FILE" ] || printf '%s %s\n' "$label" "$secs" >>"$KVC_TIMINGS_FILE"
  return "$rc"
}

# kvc_install [ENGINE...]: install the Debian packages ENGINEs (rabbitmq,
# postgres, redis; all three when none is named) need, when absent, without
# letting their maintainer scripts start the default services (which would take
# the standard ports 5672, 5432 and 6379). Each engine asks only for its own:
# the Redis Cluster (which scripts/services.sh starts for the tests) does not
# depend on the PostgreSQL 15 packages, which not every distribution has.
kvc_install() {
  local engines=("$@") engine missing=() policy_added=""
  [ $# -gt 0 ] || engines=(rabbitmq postgres redis)
  for engine in "${engines[@]}"; do
    case $engine in
      rabbitmq) [ -x "$KVC_RMQ_SBIN/rabbitmq-server" ] || missing+=(rabbitmq-server) ;;
      postgres)
        [ -x "$KVC_PG_BIN/postgres" ] || missing+=(postgresql-15)
        [ -f /usr/share/postgresql/15/extension/pgautofailover.control ] || missing+=(postgresql-15-auto-failover)
        command -v pg_autoctl >/dev/null 2>&1 || missing+=(pg-auto-failover-cli) ;;
      redis)
        command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
        command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools) ;;
      *) kvc__log "kvc_install: unknown engine '$engine' (rabbitmq, postgres or redis)"; return 1 ;;
    esac
  done
  /usr/bin/python3 -c 'import pika' >/dev/null 2>&1 || missing+=(python3-pika)
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)
  [ ${#missing[@]} -gt 0 ] || return 0
  kvc__log "installing ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_added=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || rc=$?; }
  [ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" -eq 0 ] || kvc__log "apt-get failed (status $rc) installing ${missing[*]}"
  return "$rc"
}

# -------------------------------------------------------------- RabbitMQ ----

kvc_rmq_node() { printf 'kvc%s@localhost\n' "$1"; }
kvc_rmq_port() { printf '%s\n' $((KVC_RMQ_PORT_BASE + $1)); }

# kvc_rmq_index NODE: 2 for kvc2@localhost.
kvc_rmq_index() { local n=${1%%@*}; printf '%s\n' "${n#kvc}"; }

# kvc_rmq_url N: AMQP URI of node N for the test user and vhost.
kvc_rmq_url() {
  printf 'amqp://%s:%s@127.0.0.1:%s/%s\n' "$KVC_RMQ_USER" "$KVC_RMQ_PASS" "$(kvc_rmq_port "$1")" "$KVC_RMQ_VHOST"
}

# kvc_rmq_hosts: "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3" (AMQP endpoints).
kvc_rmq_hosts() {
  local i out=()
  for ((i = 1; i <= KVC_RMQ_NODES; i++)); do out+=("127.0.0.1:$(kvc_rmq_port "$i")"); done
  (IFS=,; printf '%s\n' "${out[*]}")
}

# kvc_rmq_urls: the three AMQP URIs, one a line.
kvc_rmq_urls() { local i; for ((i = 1; i <= KVC_RMQ_NODES; i++)); do kvc_rmq_url "$i"; done; }

kvc__rmq_dir() { printf '%s/rabbitmq\n' "$KVC_BASE"; }

# The environment every RabbitMQ process of ours (server or CLI) runs with:
# our mark, our epmd, our cookie (in $HOME), our env file instead of
# /etc/rabbitmq's. One VAR=value a line.
kvc__rmq_envvars() {
  local r; r=$(kvc__rmq_dir)
  printf '%s\n' "KVC_RIG=$KVC_BASE/rabbitmq" "HOME=$r/home" \
    "ERL_EPMD_PORT=$KVC_EPMD_PORT" ERL_EPMD_ADDRESS=127.0.0.1 \
    "RABBITMQ_CONF_ENV_FILE=$r/rabbitmq-env.conf" \
    "RABBITMQ_CTL_DIST_PORT_MIN=$KVC_RMQ_CTL_DIST_MIN" \
    "RABBITMQ_CTL_DIST_PORT_MAX=$((KVC_RMQ_CTL_DIST_MIN + 19))" \
    LANG=C.UTF-8 LC_ALL=C.UTF-8
}

kvc__rmq_env() {
  local envs; mapfile -t envs < <(kvc__rmq_envvars)
  env "${envs[@]}" "$@"
}

# kvc_rmq_ctl N ARGS...: rabbitmqctl against node N (likewise _queues, _diag).
kvc_rmq_ctl() { local n=$1; shift; kvc__rmq_env "$KVC_RMQ_SBIN/rabbitmqctl" -n "$(kvc_rmq_node "$n")" "$@"; }
kvc_rmq_queues() { local n=$1; shift; kvc__rmq_env "$KVC_RMQ_SBIN/rabbitmq-queues" -n "$(kvc_rmq_node "$n")" "$@"; }
kvc_rmq_diag() { local n=$1; shift; kvc__rmq_env "$KVC_RMQ_SBIN/rabbitmq-diagnostics" -n "$(kvc_rmq_node "$n")" "$@"; }

# kvc_rmq_node_pid N: pid of node N's Erlang VM, or while it boots of its
# launcher; fails (prints nothing) when node N is not running.
kvc_rmq_node_pid() {
  local d f pid
  d="$(kvc__rmq_dir)/kvc$1"
  for f in "$d/rabbitmq.pid" "$d/launcher.pid"; do
    [ -s "$f" ] && pid=$(cat "$f") && kvc__ours "$pid" rabbitmq && { printf '%s\n' "$pid"; return 0; }
  done
  return 1
}

# kvc_rmq_any_up: index of a node whose AMQP listener is up (first one found).
kvc_rmq_any_up() {
  local i
  for ((i = 1; i <= KVC_RMQ_NODES; i++)); do
    kvc__listening "$(kvc_rmq_port "$i")" && { echo "$i"; return 0; }
  done
  return 1
}

kvc__rmq_prepare() {
  local r i; r=$(kvc__rmq_dir)
  mkdir -p "$r/home" || return 1
  : >"$r/rabbitmq-env.conf"
  echo '[].' >"$r/enabled_plugins"
  if [ ! -s "$r/home/.erlang.cookie" ]; then
    # A cookie of our own: the shared node's cookie in /var/lib/rabbitmq is left alone.
    (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F' >"$r/home/.erlang.cookie")
    chmod 400 "$r/home/.erlang.cookie"
  fi
  for ((i = 1; i <= KVC_RMQ_NODES; i++)); do
    mkdir -p "$r/kvc$i/mnesia" "$r/kvc$i/log"
    # A fresh node seeds the test vhost and user (no guest, no "/"); nodes 2
    # and 3 join kvc1 on their first boot (peer discovery from a fixed list)
    # and take the cluster's users from it.
    cat >"$r/kvc$i/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(kvc_rmq_port "$i")
cluster_name = kvcluster
cluster_partition_handling = pause_minority
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = $(kvc_rmq_node 1)
default_vhost = $KVC_RMQ_VHOST
default_user = $KVC_RMQ_USER
default_pass = $KVC_RMQ_PASS
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
EOF
  done
}

kvc__rmq_start_epmd() {
  kvc__listening "$KVC_EPMD_PORT" && return 0
  KVC_RIG="$KVC_BASE/rabbitmq" ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$KVC_EPMD_PORT" -daemon || return 1
  kvc__wait 10 "epmd on $KVC_EPMD_PORT" kvc__listening "$KVC_EPMD_PORT"
}

# Boot node N's VM in the background (returns at once; see kvc__rmq_await).
kvc__rmq_boot() {
  local n=$1 r d; r=$(kvc__rmq_dir); d="$r/kvc$n"
  rm -f "$d/rabbitmq.pid" "$d/launcher.pid"
  local envs; mapfile -t envs < <(kvc__rmq_envvars)
  # A simple command in the background: $! is env, which becomes setsid, then
  # the launcher script, all in one process.
  env "${envs[@]}" \
    RABBITMQ_NODENAME="$(kvc_rmq_node "$n")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$(kvc_rmq_port "$n")" \
    RABBITMQ_DIST_PORT=$((KVC_RMQ_DIST_BASE + n)) \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_PID_FILE="$d/rabbitmq.pid" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$r/enabled_plugins" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$KVC_RMQ_ERL_ARGS -kernel inet_dist_use_interface {127,0,0,1}" \
    setsid "$KVC_RMQ_SBIN/rabbitmq-server" </dev/null >>"$d/log/console.log" 2>&1 &
  # The launcher script turns SIGTERM into a clean stop; the VM writes its own
  # pid to rabbitmq.pid early in its boot.
  echo $! >"$d/launcher.pid"
}

# kvc__rmq_await N: wait until node N accepts AMQP connections (its listener
# opens at the end of the boot), failing early when its VM dies.
kvc__rmq_await() {
  local n=$1 start=$SECONDS
  until kvc__listening "$(kvc_rmq_port "$n")"; do
    # The launcher's pid was written by this boot (kvc__rmq_boot), so it is
    # trusted as is: until it has exec'd, it does not carry the mark yet.
    if ! kvc_rmq_node_pid "$n" >/dev/null && ! kvc__alive "$(cat "$(kvc__rmq_dir)/kvc$n/launcher.pid" 2>/dev/null)"; then
      kvc__log "node $(kvc_rmq_node "$n") died while booting; see $(kvc__rmq_dir)/kvc$n/log"
      return 1
    fi
    ((SECONDS - start < KVC_TIMEOUT)) || { kvc__log "node $(kvc_rmq_node "$n") did not start"; return 1; }
    sleep 0.3
  done
}

# kvc_rmq_running_nodes [N]: running cluster members as seen by node N (default:
# any node that is up), one a line.
kvc_rmq_running_nodes() {
  local n=${1:-$(kvc_rmq_any_up)} || return 1
  [ -n "$n" ] || return 1
  kvc_rmq_ctl "$n" eval 'io:format("~s~n", [string:join([atom_to_list(X) || X <- rabbit_nodes:all_running()], "\n")]).' 2>/dev/null \
    | grep '@' | sort
}

kvc__rmq_all_running() {
  [ "$(kvc_rmq_running_nodes "${1:-}" | wc -l)" -eq "$KVC_RMQ_NODES" ]
}

# kvc_rmq_wait_clustered [TIMEOUT]: until all three nodes run in one cluster.
kvc_rmq_wait_clustered() {
  kvc__wait "${1:-$KVC_TIMEOUT}" "all $KVC_RMQ_NODES RabbitMQ nodes running in one cluster" kvc__rmq_all_running
}

# kvc_rmq_up: (re)create the cluster from scratch: leftovers of an earlier run
# are torn down first. Nodes kvc1..3@localhost, vhost $KVC_RMQ_VHOST, user
# $KVC_RMQ_USER (administrator, all permissions there). kvc1 boots first, then
# kvc2 and kvc3 join it; join_cluster by hand if discovery did not do it.
kvc_rmq_up() {
  local start i node; start=$(kvc__now)
  kvc_install rabbitmq || return 1
  kvc_rmq_down || return 1
  kvc__rmq_prepare || return 1
  kvc__rmq_start_epmd || return 1
  kvc__rmq_boot 1 && kvc__rmq_await 1 || return 1
  for ((i = 2; i <= KVC_RMQ_NODES; i++)); do kvc__rmq_boot "$i"; done
  for ((i = 2; i <= KVC_RMQ_NODES; i++)); do kvc__rmq_await "$i" || return 1; done
  if ! kvc_rmq_wait_clustered 20; then
    # Peer discovery left a node on its own: join it by hand.
    for ((i = 2; i <= KVC_RMQ_NODES; i++)); do
      node=$(kvc_rmq_node "$i")
      kvc_rmq_running_nodes 1 | grep -qx "$node" && continue
      kvc__log "joining $node to $(kvc_rmq_node 1) with join_cluster"
      { kvc_rmq_ctl "$i" stop_app && kvc_rmq_ctl "$i" reset &&
        kvc_rmq_ctl "$i" join_cluster "$(kvc_rmq_node 1)" &&
        kvc_rmq_ctl "$i" start_app; } >>"$(kvc__rmq_dir)/join.log" 2>&1 ||
        { kvc__log "$node could not join; see $(kvc__rmq_dir)/join.log"; return 1; }
    done
    kvc_rmq_wait_clustered || return 1
  fi
  kvc__log "rabbitmq cluster up in $(kvc__since "$start") s: $(kvc_rmq_node 1)..$(kvc_rmq_node "$KVC_RMQ_NODES"), AMQP ports $(kvc_rmq_port 1)-$(kvc_rmq_port "$KVC_RMQ_NODES"), vhost $KVC_RMQ_VHOST"
}

# kvc_rmq_queue_leader QUEUE [N]: the node leading quorum queue QUEUE in the
# test vhost, asked of node N (default: any node that is up). Fails when the
# queue has no leader.
kvc_rmq_queue_leader() {
  local q=$1 n=${2:-$(kvc_rmq_any_up)} leader
  [ -n "$n" ] || return 1
  leader=$(kvc_rmq_ctl "$n" list_queues -p "$KVC_RMQ_VHOST" name leader --no-table-headers -q 2>/dev/null \
    | awk -v q="$q" -F'\t' '$1 == q { print $2 }')
  [[ "$leader" == *@* ]] || return 1
  printf '%s\n' "$leader"
}

# kvc_rmq_wait_new_leader QUEUE OLD_NODE [TIMEOUT]: wait until QUEUE is led by a
# node other than OLD_NODE (asked of the other nodes); prints the new leader.
kvc_rmq_wait_new_leader() {
  local q=$1 old=$2 timeout=${3:-$KVC_TIMEOUT} start=$SECONDS i leader
  while ((SECONDS - start < timeout)); do
    for ((i = 1; i <= KVC_RMQ_NODES; i++)); do
      [ "$(kvc_rmq_node "$i")" != "$old" ] && kvc__listening "$(kvc_rmq_port "$i")" || continue
      leader=$(kvc_rmq_queue_leader "$q" "$i") && [ "$leader" != "$old" ] && { printf '%s\n' "$leader"; return 0; }
      break
    done
    sleep 0.2
  done
  kvc__log "no new leader for $q within ${timeout}s"
  return 1
}

# kvc_rmq_stop_node N: clean stop of node N's VM (as a node going away).
kvc_rmq_stop_node() {
  local n=$1 pid
  pid=$(kvc_rmq_node_pid "$n") || { kvc__log "$(kvc_rmq_node "$n") is not running"; return 0; }
  kvc_rmq_ctl "$n" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  kvc__wait "$KVC_TIMEOUT" "$(kvc_rmq_node "$n") to stop" eval "! kvc__alive $pid"
}

# kvc_rmq_stop_app N / kvc_rmq_start_app N: stop or start the rabbit
# application on node N, its VM staying up (rabbitmqctl stop_app / start_app).
kvc_rmq_stop_app() { kvc_rmq_ctl "$1" stop_app >/dev/null; }
kvc_rmq_start_app() { kvc_rmq_ctl "$1" start_app >/dev/null && kvc_rmq_wait_clustered; }

# kvc__rmq_vm_pids N: node N's Erlang VM, from its pid file or its ports.
kvc__rmq_vm_pids() {
  local pid port
  {
    pid=$(cat "$(kvc__rmq_dir)/kvc$1/rabbitmq.pid" 2>/dev/null) && kvc__ours "$pid" rabbitmq && echo "$pid"
    for port in "$(kvc_rmq_port "$1")" $((KVC_RMQ_DIST_BASE + $1)); do
      for pid in $(kvc__port_pids "$port"); do
        [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam* ]] && echo "$pid"
      done
    done
  } | sort -u
}

# kvc_rmq_kill_node N: SIGKILL node N's Erlang VM (a crash).
kvc_rmq_kill_node() {
  local pids
  pids=$(kvc__rmq_vm_pids "$1")
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  kvc__wait 10 "$(kvc_rmq_node "$1") to die" eval "[ -z \"\$(kvc__rmq_vm_pids $1)\" ]"
}

# kvc_rmq_start_node N: boot node N again (it rejoins from its own data) and
# wait until all three run in one cluster.
kvc_rmq_start_node() {
  local n=$1
  if ! kvc_rmq_node_pid "$n" >/dev/null; then
    kvc__rmq_start_epmd || return 1
    kvc__rmq_boot "$n"
  fi
  kvc__rmq_await "$n" && kvc_rmq_wait_clustered
}

# kvc_rmq_down: stop our nodes and our epmd, remove $KVC_BASE/rabbitmq. Only
# processes recorded in our pid files or listening on our ports are touched.
kvc_rmq_down() {
  local r i pids=() pid port; r=$(kvc__rmq_dir)
  for ((i = 1; i <= KVC_RMQ_NODES; i++)); do
    for pid in $(cat "$r/kvc$i/rabbitmq.pid" "$r/kvc$i/launcher.pid" 2>/dev/null); do
      kvc__ours "$pid" rabbitmq && pids+=("$pid")
    done
    for port in "$(kvc_rmq_port "$i")" $((KVC_RMQ_DIST_BASE + i)); do
      for pid in $(kvc__port_pids "$port"); do
        [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam* ]] && pids+=("$pid")
      done
    done
  done
  kvc__stop_pids 30 "${pids[@]}"
  for pid in $(kvc__port_pids "$KVC_EPMD_PORT"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = epmd ] && kvc__stop_pids 5 "$pid"
  done
  kvc__sweep rabbitmq
  rm -rf "$r"
}

# ------------------------------------------------ PostgreSQL (pg_auto_failover) ----

kvc__pg_dir() { printf '%s/postgres\n' "$KVC_BASE"; }

# kvc_pg_port N: port of the monitor (N=0) or of data node N (1, 2).
kvc_pg_port() { printf '%s\n' $((KVC_PG_PORT_BASE + $1)); }

kvc__pg_name() { if [ "$1" -eq 0 ]; then echo monitor; else echo "node$1"; fi; }

# kvc_pg_autoctl ARGS...: pg_autoctl as the postgres user, with its
# configuration, state and pid files kept under $KVC_BASE/postgres/xdg.
kvc_pg_autoctl() {
  local r; r=$(kvc__pg_dir)
  (cd / && runuser -u postgres -- env KVC_RIG="$r" XDG_CONFIG_HOME="$r/xdg/config" XDG_DATA_HOME="$r/xdg/data" \
    XDG_RUNTIME_DIR="$r/xdg/run" PATH="$KVC_PG_BIN:$PATH" pg_autoctl "$@")
}

# kvc__pg_sql PORT DB SQL: one statement as the postgres superuser (trust on
# 127.0.0.1), unaligned output without headers.
kvc__pg_sql() {
  PGCONNECT_TIMEOUT=3 "$KVC_PG_BIN/psql" -h 127.0.0.1 -p "$1" -U postgres -d "$2" -v ON_ERROR_STOP=1 -qAtX -c "$3"
}

# kvc__pg_nodes: "name port reported-state assigned-state" per data node, from the monitor.
kvc__pg_nodes() {
  kvc__pg_sql "$(kvc_pg_port 0)" pg_auto_failover \
    "SELECT nodename, nodeport, reportedstate, goalstate FROM pgautofailover.node ORDER BY nodeid" | tr '|' ' '
}

# kvc_pg_state: pg_auto_failover's view of the formation (pg_autoctl show state).
kvc_pg_state() { kvc_pg_autoctl show state --pgdata "$(kvc__pg_dir)/monitor"; }

# kvc_pg_settings: replication settings (pg_autoctl show settings).
kvc_pg_settings() { kvc_pg_autoctl show settings --pgdata "$(kvc__pg_dir)/monitor"; }

# kvc_pg_primary_port: port of the node the monitor holds as primary (reported
# and assigned state both primary or wait_primary).
kvc_pg_primary_port() {
  kvc__pg_nodes 2>/dev/null | awk '$3 == $4 && ($3 == "primary" || $3 == "wait_primary") { print $2; found = 1 } END { exit !found }'
}

kvc__pg_healthy() {
  local states
  states=$(kvc__pg_nodes 2>/dev/null | awk '$3 == $4 { print $3 }' | sort | tr '\n' ' ')
  [ "$states" = "primary secondary " ]
}

# kvc_pg_wait_healthy [TIMEOUT]: until one node is primary and the other secondary.
kvc_pg_wait_healthy() {
  kvc__wait "${1:-$KVC_TIMEOUT}" "a PostgreSQL primary and a secondary" kvc__pg_healthy
}

kvc__pg_wait_state() {   # NAME STATE
  kvc__wait "$KVC_TIMEOUT" "$1 in state $2" eval \
    "kvc__pg_nodes 2>/dev/null | awk -v n='$1' -v s='$2' '\$1 == n && \$3 == s && \$4 == s { f = 1 } END { exit !f }'"
}

# Start pg_autoctl's service for node N (0 = monitor) in the background.
kvc__pg_run() {
  local r name; r=$(kvc__pg_dir); name=$(kvc__pg_name "$1")
  (
    cd / || exit 1
    setsid runuser -u postgres -- env KVC_RIG="$r" XDG_CONFIG_HOME="$r/xdg/config" XDG_DATA_HOME="$r/xdg/data" \
      XDG_RUNTIME_DIR="$r/xdg/run" PATH="$KVC_PG_BIN:$PATH" pg_autoctl run --pgdata "$r/$name" \
      </dev/null >>"$r/logs/$name.log" 2>&1 &
    echo $! >"$r/logs/$name.launcher.pid"
  )
}

# kvc__pg_create N: pg_autoctl create for node N (0 = monitor), logged to a file.
kvc__pg_create() {
  local n=$1 r name log rc=0; r=$(kvc__pg_dir); name=$(kvc__pg_name "$n"); log="$r/logs/create-$name.log"
  if [ "$n" -eq 0 ]; then
    kvc_pg_autoctl create monitor --pgdata "$r/$name" --pgport "$(kvc_pg_port 0)" --hostname 127.0.0.1 \
      --auth trust --no-ssl --pgctl "$KVC_PG_BIN/pg_ctl" >"$log" 2>&1 &&
      kvc_pg_autoctl config set --pgdata "$r/$name" postgresql.listen_addresses 127.0.0.1 >>"$log" 2>&1 || rc=$?
  else
    kvc_pg_autoctl create postgres --pgdata "$r/$name" --pgport "$(kvc_pg_port "$n")" --listen 127.0.0.1 \
      --hostname 127.0.0.1 --name "$name" --auth trust --no-ssl --pgctl "$KVC_PG_BIN/pg_ctl" \
      --monitor "postgres://autoctl_node@127.0.0.1:$(kvc_pg_port 0)/pg_auto_failover?sslmode=disable" >"$log" 2>&1 || rc=$?
    # A primary cut off from the monitor and its standby demotes itself after
    # this many seconds; the monitor's primary_demote_timeout must stay above it.
    [ "$rc" -ne 0 ] || [ "$KVC_PG_FAST_FAILOVER" != 1 ] ||
      kvc_pg_autoctl config set --pgdata "$r/$name" timeout.network_partition_timeout 3 >>"$log" 2>&1 || rc=$?
  fi
  [ "$rc" -eq 0 ] || { kvc__log "pg_autoctl create $name failed; last lines of $log:"; tail -n 15 "$log" >&2; }
  return "$rc"
}

# Short health checks on the monitor (see kvc_pg_up).
kvc__pg_tune_monitor() {
  local setting
  for setting in health_check_period=1000 health_check_timeout=1000 health_check_retry_delay=500 \
    health_check_max_retries=1 node_considered_unhealthy_timeout=3000 primary_demote_timeout=5000; do
    kvc__pg_sql "$(kvc_pg_port 0)" pg_auto_failover "ALTER SYSTEM SET pgautofailover.${setting%%=*} = ${setting#*=}" || return 1
  done
  kvc__pg_sql "$(kvc_pg_port 0)" pg_auto_failover "SELECT pg_reload_conf()" >/dev/null
}

# kvc_pg_up: (re)create from scratch (leftovers are torn down first) a monitor
# on port base+0, a primary and a synchronous secondary on base+1 and base+2,
# trust authentication on 127.0.0.1, and the worker's role and database
# ($KVC_PG_USER / $KVC_PG_PASS / $KVC_PG_DB). With KVC_PG_FAST_FAILOVER=1 (the
# default) the monitor checks health every second and replaces a dead primary
# in seconds instead of the ~35 s of pg_auto_failover's defaults.
kvc_pg_up() {
  local start r; start=$(kvc__now); r=$(kvc__pg_dir)
  kvc_install postgres || return 1
  kvc_pg_down || return 1
  mkdir -p "$r/logs" "$r/xdg/run" && chown -R postgres: "$r" && chmod 700 "$r/xdg/run" || return 1
  kvc__pg_create 0 || return 1
  kvc__pg_run 0
  kvc__wait "$KVC_TIMEOUT" "the monitor" kvc__pg_sql "$(kvc_pg_port 0)" pg_auto_failover "SELECT 1" || return 1
  # Retried: pg_autoctl may still restart the monitor's PostgreSQL right after start.
  [ "$KVC_PG_FAST_FAILOVER" != 1 ] || kvc__wait "$KVC_TIMEOUT" "the monitor's settings" kvc__pg_tune_monitor || return 1
  kvc__pg_create 1 && kvc__pg_run 1 && kvc__pg_wait_state node1 single || return 1
  kvc__pg_create 2 && kvc__pg_run 2 && kvc_pg_wait_healthy || return 1
  kvc_pg_check_sync >/dev/null || return 1
  kvc_pg_create_db "$KVC_PG_USER" "$KVC_PG_PASS" "$KVC_PG_DB" || return 1
  kvc__log "postgres up in $(kvc__since "$start") s: monitor $(kvc_pg_port 0), nodes $(kvc_pg_port 1),$(kvc_pg_port 2), primary $(kvc_pg_primary_port)"
}

# kvc_pg_check_sync: the primary commits only once the secondary has the WAL
# (synchronous_standby_names set, the standby streaming in sync or quorum).
# Prints "synchronous_standby_names|sync_state".
kvc_pg_check_sync() {
  local p names state
  p=$(kvc_pg_primary_port) || { kvc__log "no primary"; return 1; }
  names=$(kvc__pg_sql "$p" postgres "SHOW synchronous_standby_names")
  state=$(kvc__pg_sql "$p" postgres "SELECT string_agg(sync_state, ',') FROM pg_stat_replication WHERE state = 'streaming'")
  if [ -z "$names" ] || ! [[ "$state" =~ ^(sync|quorum) ]]; then
    kvc__log "replication is not synchronous: synchronous_standby_names='$names', standbys '$state'"
    return 1
  fi
  printf '%s|%s\n' "$names" "$state"
}

# kvc_pg_create_db USER PASS DB: role (LOGIN, CREATEDB) and database owned by
# it, created on the primary (so replicated). Idempotent.
kvc_pg_create_db() {
  local user=$1 pass=$2 db=$3 p
  p=$(kvc_pg_primary_port) || { kvc__log "no primary"; return 1; }
  [ "$(kvc__pg_sql "$p" postgres "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" = 1 ] ||
    kvc__pg_sql "$p" postgres "CREATE ROLE \"$user\" LOGIN CREATEDB PASSWORD '$pass'" || return 1
  [ "$(kvc__pg_sql "$p" postgres "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] ||
    kvc__pg_sql "$p" postgres "CREATE DATABASE \"$db\" OWNER \"$user\"" || return 1
}

# kvc_pg_url [USER] [DB]: libpq multi-host URL that reaches whichever node is primary.
kvc_pg_url() {
  local user=${1:-$KVC_PG_USER} db=${2:-$KVC_PG_DB} cred
  cred=$user; [ $# -eq 0 ] && [ -n "$KVC_PG_PASS" ] && cred="$user:$KVC_PG_PASS"
  printf 'postgresql://%s@127.0.0.1:%s,127.0.0.1:%s/%s?target_session_attrs=read-write\n' \
    "$cred" "$(kvc_pg_port 1)" "$(kvc_pg_port 2)" "$db"
}

# kvc_pg_npgsql [USER] [DB]: the same as an Npgsql connection string.
kvc_pg_npgsql() {
  local user=${1:-$KVC_PG_USER} db=${2:-$KVC_PG_DB} pass=""
  [ $# -eq 0 ] && [ -n "$KVC_PG_PASS" ] && pass="Password=$KVC_PG_PASS;"
  printf 'Host=127.0.0.1:%s,127.0.0.1:%s;Username=%s;%sDatabase=%s;Target Session Attributes=read-write\n' \
    "$(kvc_pg_port 1)" "$(kvc_pg_port 2)" "$user" "$pass" "$db"
}

# kvc_pg_psql ARGS...: psql through the multi-host URL as the worker's role.
kvc_pg_psql() { PGCONNECT_TIMEOUT=2 "$KVC_PG_BIN/psql" "$(kvc_pg_url)" -v ON_ERROR_STOP=1 -qAtX "$@"; }

# kvc__pg_writable_port: port of the node that accepts a write through the URL.
kvc__pg_writable_port() {
  kvc_pg_psql -c "SELECT txid_current() > 0 AND NOT pg_is_in_recovery(), inet_server_port()" 2>/dev/null \
    | awk -F'|' '$1 == "t" { print $2; f = 1 } END { exit !f }'
}

# kvc_pg_failover: pg_autoctl perform failover; prints the seconds until the
# multi-host URL serves a write on the other node, then waits until the old
# primary is back as a synchronous secondary (logged).
kvc_pg_failover() {
  local old start r new secs pid; r=$(kvc__pg_dir)
  old=$(kvc_pg_primary_port) || { kvc__log "no primary to fail over from"; return 1; }
  start=$(kvc__now)
  kvc_pg_autoctl perform failover --pgdata "$r/monitor" >>"$r/logs/failover.log" 2>&1 &
  pid=$!
  until new=$(kvc__pg_writable_port) && [ "$new" != "$old" ]; do
    if (($(awk -v a="$start" -v b="$(kvc__now)" 'BEGIN { print int(b - a) }') >= KVC_TIMEOUT)); then
      kvc__log "no write on a new primary within ${KVC_TIMEOUT}s"; wait "$pid"; return 1
    fi
    sleep 0.1
  done
  secs=$(kvc__since "$start")
  wait "$pid" || { kvc__log "pg_autoctl perform failover failed; see $r/logs/failover.log"; return 1; }
  kvc_pg_wait_healthy && kvc_pg_check_sync >/dev/null || return 1
  kvc__log "postgres failover $old -> $new: writes after $secs s, secondary in sync again after $(kvc__since "$start") s"
  printf '%s\n' "$secs"
}

# kvc__pg_session_pids N: the processes of node N's pg_autoctl service (0 =
# monitor): its supervisor, its helpers and the postmaster they run. They share
# the session that setsid gave the launcher.
kvc__pg_session_pids() {
  local sid pid r; r=$(kvc__pg_dir)
  sid=$(cat "$r/logs/$(kvc__pg_name "$1").launcher.pid" 2>/dev/null) && [ -n "$sid" ] || return 0
  # Only members that are provably ours: marked (pg_autoctl, the postmaster) or
  # the launcher naming our directory. PostgreSQL's backends exit on their own
  # when their postmaster dies.
  for pid in $(kvc__session_pids "$sid"); do
    if kvc__ours "$pid" postgres || tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--pgdata $r/"; then
      echo "$pid"
    fi
  done
}

# kvc__pg_keeper_pid N: pid of pg_autoctl's supervisor for node N.
kvc__pg_keeper_pid() {
  local f pid
  f="$(kvc__pg_dir)/xdg/run/pg_autoctl$(kvc__pg_dir)/$(kvc__pg_name "$1")/pg_autoctl.pid"
  [ -s "$f" ] && pid=$(head -n 1 "$f") && kvc__ours "$pid" postgres && printf '%s\n' "$pid"
}

# kvc__pg_stop N...: SIGTERM each node's supervisor (a fast shutdown of its
# PostgreSQL), then SIGKILL whatever of those sessions is left after 30 s.
kvc__pg_stop() {
  local n pid pids rest=() i
  for n in "$@"; do
    if pid=$(kvc__pg_keeper_pid "$n"); then
      kill -TERM "$pid" 2>/dev/null || true
    else
      # No supervisor (a leftover): end its children and ask PostgreSQL for a fast shutdown.
      pids=$(kvc__pg_session_pids "$n")
      [ -z "$pids" ] && continue
      kill -TERM $pids 2>/dev/null || true
      pid=$(head -n 1 "$(kvc__pg_dir)/$(kvc__pg_name "$n")/postmaster.pid" 2>/dev/null) &&
        grep -qx "$pid" <<<"$pids" && kill -INT "$pid" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 150; i++)); do
    rest=()
    for n in "$@"; do
      for pid in $(kvc__pg_session_pids "$n"); do rest+=("$pid"); done
    done
    [ ${#rest[@]} -gt 0 ] || return 0
    sleep 0.2
  done
  kill -KILL "${rest[@]}" 2>/dev/null || true
  sleep 0.2
}

# kvc_pg_stop_node N: stop data node N (pg_autoctl and a fast shutdown of its
# PostgreSQL). When N was the primary, the monitor fails over to the other node.
kvc_pg_stop_node() { kvc__pg_stop "$1"; }

# kvc_pg_kill_node N: SIGKILL every process of data node N (a crash).
kvc_pg_kill_node() {
  local pids
  pids=$(kvc__pg_session_pids "$1")
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  kvc__wait 10 "node$1 to die" eval '[ -z "$(kvc__pg_session_pids '"$1"')" ]'
}

# kvc_pg_start_node N: run data node N again; waits until the formation is
# primary + secondary again.
kvc_pg_start_node() {
  [ -n "$(kvc__pg_session_pids "$1")" ] || kvc__pg_run "$1"
  kvc_pg_wait_healthy
}

# kvc_pg_down: stop the monitor and nodes (the sessions our launchers
# started, and PostgreSQL servers on our ports), remove $KVC_BASE/postgres.
kvc_pg_down() {
  local r n pids=() pid; r=$(kvc__pg_dir)
  kvc__pg_stop 2 1 0
  # Before the ports: an orphaned pg_autoctl helper would restart PostgreSQL.
  kvc__sweep postgres
  for n in 0 1 2; do
    for pid in $(kvc__port_pids "$(kvc_pg_port "$n")"); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] && pids+=("$pid")
    done
  done
  kvc__stop_pids 30 "${pids[@]}"
  rm -rf "$r"
}

# --------------------------------------------------------- Redis Cluster ----

kvc__redis_dir() { printf '%s/redis\n' "$KVC_BASE"; }

kvc__redis_count() { echo $((3 * (1 + KVC_REDIS_REPLICAS))); }

# kvc_redis_port I: port of Redis node I (1..3, or 1..6 with replicas; the
# cluster bus is port + 10000).
kvc_redis_port() { printf '%s\n' $((KVC_REDIS_PORT_BASE + $1)); }

# kvc_redis_nodes: "127.0.0.1:P1,127.0.0.1:P2,..." (StackExchange.Redis
# endpoints; any one of them is enough for a cluster-aware client).
kvc_redis_nodes() {
  local i out=()
  for ((i = 1; i <= $(kvc__redis_count); i++)); do out+=("127.0.0.1:$(kvc_redis_port "$i")"); done
  (IFS=,; printf '%s\n' "${out[*]}")
}

# kvc_redis_cli ARGS...: redis-cli in cluster mode (-c follows MOVED) via node 1.
kvc_redis_cli() { redis-cli -c -h 127.0.0.1 -p "$(kvc_redis_port 1)" "$@"; }

kvc__redis_ok() {
  local i up=0 view
  for ((i = 1; i <= $(kvc__redis_count); i++)); do
    kvc__listening "$(kvc_redis_port "$i")" || continue   # a node stopped on purpose
    redis-cli -h 127.0.0.1 -p "$(kvc_redis_port "$i")" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    view=$(redis-cli -h 127.0.0.1 -p "$(kvc_redis_port "$i")" cluster nodes 2>/dev/null)
    up=$((up + 1))
  done
  # Every running node is known as connected by the last one asked, and each
  # replica has finished its first sync with its primary.
  [ "$(grep -c ' connected' <<<"$view")" -ge "$up" ] || return 1
  [ "$KVC_REDIS_REPLICAS" -eq 0 ] && return 0
  [ "$(grep -c 'slave' <<<"$view")" -ge 3 ] || return 1
  for ((i = 1; i <= $(kvc__redis_count); i++)); do
    kvc__listening "$(kvc_redis_port "$i")" || continue
    redis-cli -h 127.0.0.1 -p "$(kvc_redis_port "$i")" info replication 2>/dev/null | tr -d '\r' |
      grep -q -e '^role:master' -e '^master_link_status:up' || return 1
  done
}

# kvc_redis_wait_ok [TIMEOUT]: until every running node reports cluster_state:ok
# and sees the others connected (and, with replicas, each replica attached).
kvc_redis_wait_ok() { kvc__wait "${1:-$KVC_TIMEOUT}" "Redis Cluster state ok" kvc__redis_ok; }

# kvc__redis_start I: start node I (daemonized) with its own dir and nodes.conf.
kvc__redis_start() {
  local d; d="$(kvc__redis_dir)/n$1"; mkdir -p "$d" || return 1
  KVC_RIG="$KVC_BASE/redis" redis-server --port "$(kvc_redis_port "$1")" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$d/nodes.conf" --cluster-node-timeout 2000 --cluster-replica-validity-factor 0 --dir "$d" \
    --save '' --appendonly no --repl-diskless-sync-delay 0 --daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log" &&
    kvc__wait 30 "redis on $(kvc_redis_port "$1")" redis-cli -h 127.0.0.1 -p "$(kvc_redis_port "$1")" ping
}

# kvc_redis_up: (re)create from scratch a Redis Cluster of three primaries
# (plus a replica each with KVC_REDIS_REPLICAS=1), no persistence, on 127.0.0.1.
kvc_redis_up() {
  local start r i addrs=(); start=$(kvc__now); r=$(kvc__redis_dir)
  kvc_install redis || return 1
  kvc_redis_down || return 1
  for ((i = 1; i <= $(kvc__redis_count); i++)); do
    kvc__redis_start "$i" || return 1
    addrs+=("127.0.0.1:$(kvc_redis_port "$i")")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$KVC_REDIS_REPLICAS" --cluster-yes >"$r/create.log" 2>&1 ||
    { kvc__log "redis-cli --cluster create failed:"; tail -n 15 "$r/create.log" >&2; return 1; }
  kvc_redis_wait_ok || return 1
  kvc__log "redis cluster up in $(kvc__since "$start") s: $(kvc_redis_nodes)"
}

kvc__redis_pid() {
  # Redis overwrites its environment with its title: check name and port instead.
  local pid; pid=$(cat "$(kvc__redis_dir)/n$1/redis.pid" 2>/dev/null) && kvc__alive "$pid" &&
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ] &&
    kvc__port_pids "$(kvc_redis_port "$1")" | grep -qx "$pid" && echo "$pid"
}

# kvc_redis_stop_node I: stop node I (SIGTERM; no data is kept, nodes.conf is).
kvc_redis_stop_node() { local pid; pid=$(kvc__redis_pid "$1") && kvc__stop_pids 10 "$pid"; return 0; }

# kvc_redis_kill_node I: SIGKILL node I.
kvc_redis_kill_node() { local pid; pid=$(kvc__redis_pid "$1") && kvc__stop_pids 0 "$pid"; return 0; }

# kvc_redis_start_node I: start node I again (it rejoins through its nodes.conf).
kvc_redis_start_node() { kvc__redis_pid "$1" >/dev/null || kvc__redis_start "$1"; kvc_redis_wait_ok; }

# kvc_redis_down: stop our Redis nodes (pid files, or redis-server on our
# ports) and remove $KVC_BASE/redis.
kvc_redis_down() {
  local r i pids=() pid; r=$(kvc__redis_dir)
  for ((i = 1; i <= 6; i++)); do   # 6: whether or not an earlier run had replicas
    pid=$(kvc__redis_pid "$i") && pids+=("$pid")
    for pid in $(kvc__port_pids "$(kvc_redis_port "$i")"); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ] && pids+=("$pid")
    done
  done
  kvc__stop_pids 10 "${pids[@]}"
  kvc__sweep redis
  rm -rf "$r"
}

# ------------------------------------------------------------------ all ----

# kvc_up_all / kvc_down_all: the three engines, each timed (see kvc_timed).
kvc_up_all() {
  kvc_install &&
    kvc_timed "rabbitmq up" kvc_rmq_up &&
    kvc_timed "postgres up" kvc_pg_up &&
    kvc_timed "redis up" kvc_redis_up
}

kvc_down_all() {
  local rc=0
  kvc_timed "rabbitmq down" kvc_rmq_down || rc=1
  kvc_timed "postgres down" kvc_pg_down || rc=1
  kvc_timed "redis down" kvc_redis_down || rc=1
  rmdir "$KVC_BASE" 2>/dev/null
  return "$rc"
}
