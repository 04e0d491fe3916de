#!/usr/bin/env bash
# Runs the tests of the Python package kvworker (clients/python/tests: the blocking and
# asyncio clients, the ATLAS adapter, the README's Python examples) against a worker
# started here on a fresh RabbitMQ virtual host and database (its broker user may act
# as "tester", who reads and writes, or "reader"; the Redis provider is registered
# with a key prefix of its own), then stops it and removes all three. The package is
# installed first, with the README's commands, into a virtual environment of its own,
# and the tests run on that installation. Writes the counts as a TRX file into
# DIR/python/, beside dotnet test's, for scripts/test.sh to add up; exits non-zero on
# any failure (a skipped test counts as one). Needs the worker built in Release
# (dotnet test builds it) and KV_TEST_POSTGRES / KV_TEST_RABBITMQ (scripts/test.sh sets
# them; KV_TEST_REDIS defaults to 127.0.0.1:6379).
#
#   scripts/python-tests.sh DIR [pytest arguments, e.g. -k atlas]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
results_dir=$1
shift
name="kvpy_$$_$RANDOM"
worker_dll=src/KvWorker/bin/Release/net10.0/KvWorker.dll
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"
say() { printf '[python-tests] %s\n' "$*" >&2; }

[ -f "$worker_dll" ] || { say "$worker_dll is missing: build the worker in Release first"; exit 1; }
bash scripts/python-deps.sh || exit 1
mkdir -p "$results_dir/python"

# The servers' settings, from the Npgsql connection string, the AMQP URI and host:port of Redis.
eval "$(/usr/bin/python3 - "$name" <<'PY'
import os, shlex, sys, urllib.parse
name = sys.argv[1]
pg = {k.strip().lower(): v for k, _, v in (p.partition("=") for p in os.environ["KV_TEST_POSTGRES"].split(";") if p)}
amqp = urllib.parse.urlparse(os.environ["KV_TEST_RABBITMQ"])
user, password = urllib.parse.unquote(amqp.username or "guest"), urllib.parse.unquote(amqp.password or "guest")
redis_host, _, redis_port = (os.environ.get("KV_TEST_REDIS") or "127.0.0.1:6379").rpartition(":")
values = {
    "PGHOST": pg.get("host", "127.0.0.1"), "PGPORT": pg.get("port", "5432"),
    "PGUSER": pg.get("username", pg.get("user id", pg.get("user", ""))), "PGPASSWORD": pg.get("password", ""),
    "PGDATABASE": pg.get("database", "postgres"),
    "AMQP_HOST": amqp.hostname or "127.0.0.1", "AMQP_PORT": str(amqp.port or 5672),
    "AMQP_USER": user, "AMQP_PASSWORD": password,
    "REDIS_HOST": redis_host or "127.0.0.1", "REDIS_PORT": redis_port,
    "KV_RABBITMQ_URL": f"amqp://{urllib.parse.quote(user)}:{urllib.parse.quote(password)}@{amqp.hostname}:{amqp.port or 5672}/{name}",
}
for key, value in values.items():
    print(f"export {key}={shlex.quote(value)}")
PY
)" || exit 1

worker_pid=""
scratch="$(mktemp -d)"
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  rabbitmqctl -q delete_vhost "$name" >/dev/null 2>&1
  psql -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "$name:*" |
      xargs -r -n 100 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" del >/dev/null 2>&1
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

psql -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$name\"" || exit 1
rabbitmqctl -q add_vhost "$name" >/dev/null && rabbitmqctl -q set_permissions -p "$name" "$AMQP_USER" '.*' '.*' '.*' >/dev/null || exit 1

log="$results_dir/python-worker.log"
(cd "$(dirname "$worker_dll")" && exec env \
  ATLAS_KV_STORE_URL="Host=$PGHOST;Port=$PGPORT;Username=$PGUSER;Password=$PGPASSWORD;Database=$name" \
  RabbitMq__Host="$AMQP_HOST" RabbitMq__Port="$AMQP_PORT" RabbitMq__VirtualHost="$name" \
  RabbitMq__Username="$AMQP_USER" RabbitMq__Password="$AMQP_PASSWORD" \
  tools__kv_store__adapters__redis__url="$REDIS_HOST:$REDIS_PORT" \
  tools__kv_store__adapters__redis__key_prefix="$name:" \
  tools__kv_store__personas__tester__flags__0=type.system.kv_store_access \
  tools__kv_store__personas__tester__flags__1=type.system.kv_store_write \
  tools__kv_store__personas__reader__flags__0=type.system.kv_store_access \
  "tools__kv_store__identities__${AMQP_USER}__personas__0=tester" \
  "tools__kv_store__identities__${AMQP_USER}__personas__1=reader" \
  "tools__kv_store__identities__${AMQP_USER}__default_persona=tester" \
  dotnet KvWorker.dll >"$log" 2>&1) &
worker_pid=$!

# While the worker starts: install the package as the README says, into a virtual environment of its own.
# (setuptools builds in clients/python/build, which would keep files since removed from the package.)
rm -rf clients/python/build
venv="$scratch/.venv"
install_log="$results_dir/python-install.log"
{ /usr/bin/python3 -m venv --system-site-packages "$venv" &&
  "$venv/bin/pip" install --no-build-isolation ./clients/python; } >"$install_log" 2>&1 ||
  { say "installing clients/python failed; its log:"; cat "$install_log" >&2; exit 1; }
installed="$(cd / && "$venv/bin/python" -c 'import kvworker; print(kvworker.__file__)')" || exit 1
case "$installed" in
  "$venv"/*) say "testing kvworker as installed: $installed" ;;
  *) say "kvworker was imported from $installed, not from the installation in $venv"; exit 1 ;;
esac

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

# Run the tests (from the repository root, as the README's examples are run) and write their counts as TRX.
junit="$scratch/python-junit.xml"
"$venv/bin/python" -m pytest -p no:cacheprovider -v -rfEs --junitxml="$junit" clients/python/tests "$@"
pytest_status=$?
/usr/bin/python3 - "$junit" "$results_dir/python/python.trx" "$pytest_status" <<'PY'
import sys, xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr
junit, trx_path, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    total, failed, errors, skipped = (sum(int(suite.get(name, 0)) for suite in ET.parse(junit).getroot().iter("testsuite"))
                                      for name in ("tests", "failures", "errors", "skipped"))
except (OSError, ET.ParseError) as error:
    print(f"[python-tests] no test results ({error})", file=sys.stderr)
    total, failed, errors, skipped = 1, 0, 1, 0
if status != 0 and failed + errors == 0:
    errors = 1  # pytest itself failed (collection, usage)
    total = max(total, 1)
passed = max(total - failed - errors - skipped, 0)
ok = failed + errors + skipped == 0
# A skipped test is a failure here (see below), so the TRX counts it among the failed, once: as not
# executed, scripts/test.sh reported it as skipped and added a failure only when nothing else failed.
with open(trx_path, "w") as trx:
    trx.write(f'<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010" name={quoteattr("python clients/python")}>'
              f'<ResultSummary outcome="{"Completed" if ok else "Failed"}"><Counters total="{total}" executed="{total - skipped}" '
              f'passed="{passed}" failed="{failed + skipped}" error="{errors}" notExecuted="0" /></ResultSummary></TestRun>\n')
print(f"[python-tests] {passed} passed, {failed} failed, {errors} errors, {skipped} skipped", file=sys.stderr)
if skipped:
    print("[python-tests] a skipped test counts as a failure: these tests need their worker", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
