#!/usr/bin/env bash
# Cluster fault test: three worker replicas on a 3-node RabbitMQ cluster with
# quorum queues and PostgreSQL under pg_auto_failover (monitor, primary,
# synchronous secondary), under steady load while the RabbitMQ node leading
# kv_increment stops and starts again, PostgreSQL fails over and replicas are
# killed (tests/fault/cluster_test.py). Everything runs on this machine on the
# rig's own ports (scripts/cluster/engines.sh); the servers other work uses are
# never touched, nor the rig's Redis Cluster. About three minutes; run as root. The
# replicas' logs stay in $KVC_BASE/cluster-test, with a copy of the engines'.
#   bash scripts/cluster-test.sh         (CLUSTER_LOAD_SECONDS=60; KVC_KEEP=1 leaves the engines up)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
# shellcheck source=cluster/engines.sh
source scripts/cluster/engines.sh
[ "$(id -u)" -eq 0 ] || { echo "cluster-test.sh: run as root (the engines run as root and postgres)" >&2; exit 1; }

export CLUSTER_LOG_DIR="$KVC_BASE/cluster-test"
teardown() {
  # The engines' logs go with their data: keep a copy beside the replicas' logs.
  mkdir -p "$CLUSTER_LOG_DIR/rabbitmq"
  cp "$KVC_BASE"/rabbitmq/kvc*/log/kvc*.log "$CLUSTER_LOG_DIR/rabbitmq/" 2>/dev/null || true
  cp -r "$KVC_BASE/postgres/logs" "$CLUSTER_LOG_DIR/postgres" 2>/dev/null || true
  [ "${KVC_KEEP:-0}" = 1 ] && return
  kvc_rmq_down || true
  kvc_pg_down || true
}
trap teardown EXIT
rm -rf "$CLUSTER_LOG_DIR"

kvc_timed "rabbitmq up (3 nodes)" kvc_rmq_up
kvc_timed "postgres up (monitor, primary, sync secondary)" kvc_pg_up
kvc__log "building the worker"
dotnet build src/KvWorker -c Release -v quiet -nologo >/dev/null

export CLUSTER_RIG="$ROOT/scripts/cluster/engines.sh"
export CLUSTER_WORKER_DLL="$ROOT/src/KvWorker/bin/Release/net10.0/KvWorker.dll"
/usr/bin/python3 tests/fault/cluster_test.py
