#!/usr/bin/env bash
# Runs the Python client's tests (clients/python, Debian's python3-pika) against
# a worker started here on a fresh RabbitMQ virtual host and database (its
# broker user may act as "tester", who reads and writes, or "reader"), then
# stops it and removes both. Writes the counts as a TRX file into the directory
# given, beside dotnet test's, for scripts/test.sh to add up; exits non-zero on
# any failure. Needs the worker built in Release (dotnet test builds it) and
# KV_TEST_POSTGRES / KV_TEST_RABBITMQ (scripts/test.sh sets them).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
results_dir=$1
name="kvpy_$$_$RANDOM"
worker_dll=src/KvWorker/bin/Release/net10.0/KvWorker.dll
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"
say() { printf '[python-tests] %s\n' "$*" >&2; }

[ -f "$worker_dll" ] || { say "$worker_dll is missing: build the worker in Release first"; exit 1; }

# The servers' settings, from the Npgsql connection string and the AMQP URI.
eval "$(/usr/bin/python3 - "$name" <<'PY'
import os, shlex, sys, urllib.parse
name = sys.argv[1]
pg = {k.strip().lower(): v for k, _, v in (p.partition("=") for p in os.environ["KV_TEST_POSTGRES"].split(";") if p)}
amqp = urllib.parse.urlparse(os.environ["KV_TEST_RABBITMQ"])
user, password = urllib.parse.unquote(amqp.username or "guest"), urllib.parse.unquote(amqp.password or "guest")
values = {
    "PGHOST": pg.get("host", "127.0.0.1"), "PGPORT": pg.get("port", "5432"),
    "PGUSER": pg.get("username", pg.get("user id", pg.get("user", ""))), "PGPASSWORD": pg.get("password", ""),
    "PGDATABASE": pg.get("database", "postgres"),
    "AMQP_HOST": amqp.hostname or "127.0.0.1", "AMQP_PORT": str(amqp.port or 5672),
    "AMQP_USER": user, "AMQP_PASSWORD": password,
    "KV_RABBITMQ_URL": f"amqp://{urllib.parse.quote(user)}:{urllib.parse.quote(password)}@{amqp.hostname}:{amqp.port or 5672}/{name}",
}
for key, value in values.items():
    print(f"export {key}={shlex.quote(value)}")
PY
)" || exit 1

worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  rabbitmqctl -q delete_vhost "$name" >/dev/null 2>&1
  psql -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

psql -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$name\"" || exit 1
rabbitmqctl -q add_vhost "$name" >/dev/null && rabbitmqctl -q set_permissions -p "$name" "$AMQP_USER" '.*' '.*' '.*' >/dev/null || exit 1

log="$results_dir/python-worker.log"
(cd "$(dirname "$worker_dll")" && exec env \
  ATLAS_KV_STORE_URL="Host=$PGHOST;Port=$PGPORT;Username=$PGUSER;Password=$PGPASSWORD;Database=$name" \
  RabbitMq__Host="$AMQP_HOST" RabbitMq__Port="$AMQP_PORT" RabbitMq__VirtualHost="$name" \
  RabbitMq__Username="$AMQP_USER" RabbitMq__Password="$AMQP_PASSWORD" \
  tools__kv_store__personas__tester__flags__0=type.system.kv_store_access \
  tools__kv_store__personas__tester__flags__1=type.system.kv_store_write \
  tools__kv_store__personas__reader__flags__0=type.system.kv_store_access \
  "tools__kv_store__identities__${AMQP_USER}__personas__0=tester" \
  "tools__kv_store__identities__${AMQP_USER}__personas__1=reader" \
  "tools__kv_store__identities__${AMQP_USER}__default_persona=tester" \
  dotnet KvWorker.dll >"$log" 2>&1) &
worker_pid=$!

# Ready when each queue has a consumer.
/usr/bin/python3 - "$worker_pid" <<'PY' || { say "the worker did not become ready; its log:"; cat "$log" >&2; exit 1; }
import os, sys, time, pika
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    os.kill(int(sys.argv[1]), 0)  # raises once the worker has exited
    try:
        with pika.BlockingConnection(pika.URLParameters(os.environ["KV_RABBITMQ_URL"])) as connection:
            if all(connection.channel().queue_declare(q, passive=True).method.consumer_count > 0
                   for q in ("kv_get", "kv_set", "kv_delete", "kv_increment", "kv_usage")):
                sys.exit(0)
    except pika.exceptions.ChannelClosedByBroker:
        pass  # a queue is not declared yet
    time.sleep(0.5)
sys.exit(1)
PY

# Run the tests and write their counts as TRX.
/usr/bin/python3 - "$results_dir/python.trx" <<'PY'
import sys, unittest
from xml.sax.saxutils import quoteattr
suite = unittest.defaultTestLoader.discover("clients/python")
result = unittest.TextTestRunner(verbosity=2).run(suite)
total = result.testsRun
failed, errors, skipped = len(result.failures) + len(result.unexpectedSuccesses), len(result.errors), len(result.skipped)
passed = total - failed - errors - skipped
outcome = "Completed" if result.wasSuccessful() else "Failed"
with open(sys.argv[1], "w") as trx:
    trx.write(f'<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010" name={quoteattr("python clients/python")}>'
              f'<ResultSummary outcome="{outcome}"><Counters total="{total}" executed="{total - skipped}" passed="{passed}" '
              f'failed="{failed}" error="{errors}" notExecuted="{skipped}" /></ResultSummary></TestRun>\n')
sys.exit(0 if result.wasSuccessful() else 1)
PY
