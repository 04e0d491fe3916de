#!/usr/bin/env bash
# Brings up PostgreSQL, RabbitMQ and Redis when needed (scripts/services.sh), builds Release, then runs the
# benchmark: the worker (1 and 2 replicas, as separate processes) against an
# echo service and PostgreSQL directly, on a fresh database and fresh virtual
# hosts that are removed afterwards. Arguments go to the benchmark, e.g.
#   bash scripts/bench.sh --quick                       (two to three minutes)
#   bash scripts/bench.sh --markdown docs/benchmarks.md (full run, about 40 minutes)
#   bash scripts/bench.sh --soak 600                    (worker memory over 10 minutes)
#   bash scripts/bench.sh --help                        (every option)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh
# The profile scenario samples the machine with perf (the worker and the echo service). The package
# lists first: services.sh updates them only when it installs something, and a fresh image has none.
command -v perf >/dev/null 2>&1 || { [ "$(id -u)" -eq 0 ] && apt-get update -qq >/dev/null 2>&1 &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf >/dev/null 2>&1; } || true

export KV_BENCH_POSTGRES="${KV_BENCH_POSTGRES:-Host=127.0.0.1;Port=${KV_PG_PORT:-5432};Username=kvworker;Password=kvworker;Database=kvworker}"
export KV_BENCH_RABBITMQ="${KV_BENCH_RABBITMQ:-amqp://guest:guest@127.0.0.1:${KV_AMQP_PORT:-5672}/}"
export KV_BENCH_REVISION="${KV_BENCH_REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +changes)}"
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

dotnet build bench/KvWorker.Bench -c Release -v quiet -nologo >&2
exec dotnet bench/KvWorker.Bench/bin/Release/net10.0/KvWorker.Bench.dll "$@"
