#!/usr/bin/env bash
# Brings up PostgreSQL, RabbitMQ and Redis for KvWorker when nothing is listening yet.
# With --for-tests, also what the tests need: the Redis Cluster (KV_TEST_REDIS_CLUSTER)
# when its nodes are not up, the Python test packages and docker-compose.
# With a Docker engine: docker compose. Without one: local processes, installed
# through apt when absent. Safe to run again; it only starts what is missing.
#
#   scripts/services.sh [--for-tests]
set -euo pipefail
for_tests=""
[ "${1:-}" = "--for-tests" ] && for_tests=1

PG_PORT="${KV_PG_PORT:-5432}"
AMQP_PORT="${KV_AMQP_PORT:-5672}"
REDIS_PORT="${KV_REDIS_PORT:-6379}"
PG_DATA="${KV_PG_DATA:-/var/tmp/kvworker/pgdata}"
REDIS_DIR="${KV_REDIS_DIR:-/var/tmp/kvworker/redis}"
# The nodes scripts/cluster/engines.sh's kvc_redis_up starts: three primaries.
REDIS_CLUSTER="${KV_TEST_REDIS_CLUSTER:-127.0.0.1:16901,127.0.0.1:16902,127.0.0.1:16903}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '[services] %s\n' "$*" >&2; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { say "apt-get update"; as_root apt-get update -qq >/dev/null; apt_updated=1; }
  say "installing $*"
  # Without recommends: docker-compose, say, recommends the Docker engine itself.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_for_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do listening "$port" && return 0; sleep 0.5; done
  say "$name did not start listening on port $port"; exit 1
}

# Debian's docker-compose (v1) has no --wait, and a published port answers (Docker's proxy)
# before the service behind it is ready: wait for the containers' health checks instead,
# as the compose plugin's --wait does, so nothing connects to a server still starting.
wait_healthy() {
  local service id
  for service in "$@"; do
    id="$(cd "$REPO_ROOT" && docker-compose ps -q "$service")"
    for _ in $(seq 1 120); do
      [ "$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)" = healthy ] && continue 2
      sleep 1
    done
    say "$service did not become healthy; see docker-compose logs $service"; exit 1
  done
}

# With a Docker engine and compose, the services not listening yet start as containers
# (only those: a container publishing a port already taken would fail).
compose_up=()
if docker compose version >/dev/null 2>&1; then compose_up=(docker compose up -d --wait)
elif command -v docker-compose >/dev/null 2>&1; then compose_up=(docker-compose up -d); fi
use_docker=""
if [ "${#compose_up[@]}" -gt 0 ] && docker info >/dev/null 2>&1; then
  use_docker=1
  missing=()
  listening "$PG_PORT" || missing+=(postgres)
  listening "$AMQP_PORT" || missing+=(rabbitmq)
  listening "$REDIS_PORT" || missing+=(redis)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "docker engine found: starting ${missing[*]} with docker compose"
    (cd "$REPO_ROOT" && "${compose_up[@]}" "${missing[@]}")
    [ "${compose_up[0]}" = docker ] || wait_healthy "${missing[@]}"
  fi
fi

pg_bin_dir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return; }; done
  dirname "$(command -v initdb)"
}

start_postgres() {
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
    # Debian's package may have started its own cluster on the port: use it.
    sleep 1
    listening "$PG_PORT" && return 0
  fi
  local bin run_as=()
  bin="$(pg_bin_dir)"
  export PATH="$PATH:$bin"
  if [ "$(id -u)" -eq 0 ]; then run_as=(runuser -u postgres --); fi
  mkdir -p "$PG_DATA"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$PG_DATA"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    say "initdb $PG_DATA"
    "${run_as[@]}" "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  say "starting postgres on 127.0.0.1:$PG_PORT"
  "${run_as[@]}" "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp -c max_connections=300" >/dev/null
}

# The kvworker role (allowed to create the tests' databases) and database.
ensure_kv_database() {
  PGPASSWORD=kvworker psql -h 127.0.0.1 -p "$PG_PORT" -U kvworker -d kvworker -qtA -c "SELECT 1" >/dev/null 2>&1 && return 0
  local psql=(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if ! "${psql[@]}" -c "SELECT 1" >/dev/null 2>&1; then
    # A server started elsewhere: try the postgres OS user over the local socket.
    if [ "$(id -u)" -eq 0 ]; then psql=(runuser -u postgres -- psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -qtA)
    else psql=(sudo -u postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -qtA); fi
    "${psql[@]}" -c "SELECT 1" >/dev/null 2>&1 || {
      say "cannot connect to postgres on port $PG_PORT as a superuser; create role and database kvworker (password kvworker, CREATEDB) yourself"
      exit 1
    }
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'kvworker'")" != 1 ]; then
    "${psql[@]}" -c "CREATE ROLE kvworker LOGIN PASSWORD 'kvworker' CREATEDB"
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'kvworker'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE kvworker OWNER kvworker"
  fi
}

start_rabbitmq() {
  command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server
  export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"
  say "starting rabbitmq on 127.0.0.1:$AMQP_PORT"
  # The Debian package may have started it through its service already.
  listening "$AMQP_PORT" || as_root env RABBITMQ_NODE_PORT="$AMQP_PORT" rabbitmq-server -detached >/dev/null 2>&1 || true
  # The node registers with epmd a moment after -detached returns; until then
  # await_startup fails at once instead of waiting.
  for _ in $(seq 1 60); do
    as_root rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 && return 0
    sleep 1
  done
  say "rabbitmq did not start; see /var/log/rabbitmq"; exit 1
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || {
    apt_install redis-server
    # Debian's package may have started its own service on the port: use it.
    sleep 1
    listening "$REDIS_PORT" && return 0
  }
  mkdir -p "$REDIS_DIR"
  say "starting redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$REDIS_DIR" \
    --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_DIR/redis.pid" >/dev/null
}

listening "$PG_PORT" || start_postgres
wait_for_port "$PG_PORT" postgres
[ -n "$use_docker" ] || ensure_kv_database
listening "$AMQP_PORT" || start_rabbitmq
wait_for_port "$AMQP_PORT" rabbitmq
listening "$REDIS_PORT" || start_redis
wait_for_port "$REDIS_PORT" redis

say "postgres on 127.0.0.1:$PG_PORT, rabbitmq on 127.0.0.1:$AMQP_PORT, redis on 127.0.0.1:$REDIS_PORT"
[ -n "$for_tests" ] || exit 0

# The Redis Cluster the conformance suite also runs against, from the fault-test rig
# (scripts/cluster), which starts it afresh when any of its nodes is down.
cluster_up=1
for node in ${REDIS_CLUSTER//,/ }; do listening "${node##*:}" || cluster_up=""; done
if [ -z "$cluster_up" ]; then
  say "starting the Redis Cluster on $REDIS_CLUSTER"
  # shellcheck source=cluster/engines.sh
  (set +euo pipefail; source "$REPO_ROOT/scripts/cluster/engines.sh" && kvc_redis_up) || { say "the Redis Cluster did not start"; exit 1; }
fi

# python3-pika, python3-aio-pika, python3-pytest, python3-pip, python3-setuptools and python3-venv,
# for the Python package and its tests (scripts/python-tests.sh), when absent.
bash "$REPO_ROOT/scripts/python-deps.sh"
command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose  # scripts/test.sh validates docker-compose.yml with it
say "redis cluster on $REDIS_CLUSTER"
