#!/usr/bin/env bash
# Brings up PostgreSQL, RabbitMQ and Redis when needed, then runs the worker
# with both providers: postgres (the default) and redis.
# Extra arguments go to the worker (e.g. --tools:kv_store:adapters:postgres:namespace_quota_bytes=2097152).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/services.sh
export ATLAS_KV_STORE_URL="${ATLAS_KV_STORE_URL:-postgresql+psycopg://kvworker:kvworker@127.0.0.1:${KV_PG_PORT:-5432}/kvworker}"
export RabbitMq__Port="${RabbitMq__Port:-${KV_AMQP_PORT:-5672}}"
export tools__kv_store__adapters__redis__url="${tools__kv_store__adapters__redis__url:-127.0.0.1:${KV_REDIS_PORT:-6379}}"
# Development: src/KvWorker/appsettings.Development.json grants RabbitMQ's guest user a persona.
export DOTNET_ENVIRONMENT="${DOTNET_ENVIRONMENT:-Development}"
exec dotnet run --project src/KvWorker -c Release -- "$@"
