#!/usr/bin/env bash
# Fault test: three worker replicas under steady increment load while replicas
# are killed with SIGKILL, PostgreSQL restarts once and RabbitMQ restarts once.
# Runs its own PostgreSQL (port 16432) and RabbitMQ node (port 16672), so the
# servers other work uses are never disturbed. About a minute and a half.
#   bash scripts/fault-test.sh            (FAULT_LOAD_SECONDS=60 by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
bash scripts/services.sh --for-tests >/dev/null  # installs what is missing

BASE=/var/tmp/kvworker/fault
# Below the kernel's ephemeral range (32768-60999 by default), so a client socket of
# another test can never hold the port when the server binds it.
PG_PORT=16432
AMQP_PORT=16672
say() { printf '[fault-test] %s\n' "$*" >&2; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -E "$@"; fi; }

PG_BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | head -1 || command -v pg_ctl)")"
export PATH="$PATH:$PG_BIN:/usr/sbin:/usr/lib/rabbitmq/bin"

export RABBITMQ_NODENAME=kvfault@localhost RABBITMQ_NODE_PORT=$AMQP_PORT RABBITMQ_DIST_PORT=$((AMQP_PORT + 1))
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE=$BASE/rabbit/mnesia RABBITMQ_LOG_BASE=$BASE/rabbit/log
export RABBITMQ_ENABLED_PLUGINS_FILE=$BASE/rabbit/enabled_plugins RABBITMQ_CONFIG_FILE=$BASE/rabbit/rabbitmq
export RABBITMQ_PID_FILE=$BASE/rabbit/pid

stop_servers() {
  as_root rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
  as_postgres pg_ctl -D "$BASE/pg" -m immediate stop >/dev/null 2>&1 || true
}
trap stop_servers EXIT

stop_servers
rm -rf "$BASE"
mkdir -p "$BASE/pg" "$BASE/rabbit"
echo "[]." > "$BASE/rabbit/enabled_plugins"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$BASE/pg"; chown -R rabbitmq: "$BASE/rabbit"; chmod 777 "$BASE"; fi

say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
as_postgres initdb -D "$BASE/pg" -U postgres --auth=trust -E UTF8 >/dev/null
as_postgres pg_ctl -D "$BASE/pg" -l "$BASE/pg/server.log" -w -t 60 start \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp" >/dev/null || {
  say "PostgreSQL did not start; its log:"; cat "$BASE/pg/server.log" >&2; exit 1; }
say "starting RabbitMQ node $RABBITMQ_NODENAME on 127.0.0.1:$AMQP_PORT"
as_root rabbitmq-server -detached >/dev/null 2>&1
rabbitmq_up=""
for _ in $(seq 1 60); do
  as_root rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup --timeout 60 >/dev/null 2>&1 && { rabbitmq_up=1; break; }
  sleep 1
done
[ -n "$rabbitmq_up" ] || { say "RabbitMQ node $RABBITMQ_NODENAME did not start; its logs are in $BASE/rabbit/log"; exit 1; }

say "building the worker"
dotnet build src/KvWorker -c Release -v quiet -nologo >/dev/null

export FAULT_AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2F"
export FAULT_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres"
export FAULT_WORKER_DLL="$ROOT/src/KvWorker/bin/Release/net10.0/KvWorker.dll"
export FAULT_PG_CTL="$( [ "$(id -u)" -eq 0 ] && echo "runuser -u postgres --") $PG_BIN/pg_ctl -D $BASE/pg"
/usr/bin/python3 tests/fault/fault_test.py
