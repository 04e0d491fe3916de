#!/usr/bin/env bash
# Brings up PostgreSQL, RabbitMQ, Redis and a Redis Cluster when needed, then runs every test
# project of KvWorker.sln and ends with one line: "tests: N passed, N failed[, N skipped]",
# counted from the results of all of them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Without the servers no test can run: one failure, so the summary line is there all the same.
bash scripts/services.sh --for-tests || { echo "tests: 0 passed, 1 failed"; exit 1; }

export KV_TEST_POSTGRES="${KV_TEST_POSTGRES:-Host=127.0.0.1;Port=${KV_PG_PORT:-5432};Username=kvworker;Password=kvworker;Database=kvworker}"
export KV_TEST_RABBITMQ="${KV_TEST_RABBITMQ:-amqp://guest:guest@127.0.0.1:${KV_AMQP_PORT:-5672}/}"
export KV_TEST_REDIS="${KV_TEST_REDIS:-127.0.0.1:${KV_REDIS_PORT:-6379}}"
export KV_TEST_REDIS_CLUSTER="${KV_TEST_REDIS_CLUSTER:-127.0.0.1:16901,127.0.0.1:16902,127.0.0.1:16903}"
export PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

# Each test project writes its TRX into "$results/<project>" (see Directory.Build.props).
dotnet test KvWorker.sln -c Release --logger "trx" --logger "console;verbosity=normal" "-p:KvTestResultsRoot=$results" "$@"
status=$?

# The Python package's tests, against a worker of their own; they add a TRX file to $results/python.
bash scripts/python-tests.sh "$results" || status=1

# docker-compose.yml must stay valid for hosts with Docker (Debian's docker-compose checks it without an engine).
if docker-compose config -q && docker-compose --profile monitoring config -q && docker-compose --profile cluster config -q; then echo "docker-compose.yml is valid"; else echo "docker-compose.yml is invalid"; status=1; fi

# The fault tests count as one test each: replicas killed, PostgreSQL and RabbitMQ restarted
# under load; and the same on a RabbitMQ cluster and PostgreSQL under pg_auto_failover.
fault_passed=0 fault_failed=0
for fault_test in scripts/fault-test.sh scripts/cluster-test.sh; do
  if bash "$fault_test"; then fault_passed=$((fault_passed + 1)); else fault_failed=$((fault_failed + 1)); status=1; fi
done

# The test projects of the solution: those that reference the test SDK; and "python", whose
# TRX file scripts/python-tests.sh writes into "$results/python".
projects="$(grep -l 'Microsoft.NET.Test.Sdk' tests/*/*.csproj | xargs -n1 basename | sed 's/\.csproj$//') python"

# Sum the counters of every project's TRX files; a project that wrote none counts as a failure.
# The failed tests are named again here, with their messages' first lines, so that the end of
# a long log says which ones they were.
read -r passed failed skipped < <(
  /usr/bin/python3 - "$results" $projects <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
root, projects = sys.argv[1], sys.argv[2:]
for project in projects:
    paths = glob.glob(f"{root}/{project}/**/*.trx", recursive=True)
    if not paths:
        print(f"no test results from {project}", file=sys.stderr)
        failed += 1
    for path in paths:
        run = ET.parse(path).getroot()
        for result in run.iterfind("t:Results/t:UnitTestResult", ns):
            if result.get("outcome") in ("Failed", "Error", "Timeout", "Aborted"):
                message = (result.findtext("t:Output/t:ErrorInfo/t:Message", "", ns).strip().splitlines() or [""])[0]
                print(f"failed: {result.get('testName')}: {message[:300]}", file=sys.stderr)
        counters = run.find("t:ResultSummary/t:Counters", ns)
        get = lambda name: int(counters.get(name, 0))
        passed += get("passed")
        failed += get("failed") + get("error") + get("timeout") + get("aborted")
        skipped += get("notExecuted")
print(passed, failed, skipped)
PY
)
passed=$(( ${passed:-0} + fault_passed )) failed=$(( ${failed:-0} + fault_failed ))
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1  # a crashed run counts as a failure
line="tests: ${passed:-0} passed, ${failed:-0} failed"
[ "${skipped:-0}" -gt 0 ] && line="$line, ${skipped} skipped"
echo "$line"
exit "$status"
