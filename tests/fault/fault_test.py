#!/usr/bin/python3
"""Fault test driver: replicas under steady increment load while they are
killed, PostgreSQL restarts and RabbitMQ restarts.

Started by scripts/fault-test.sh, which provides servers of its own and the
environment below. Clients retry every request with the same message_id until
it is answered, as a careful client does; at the end every counter must equal
the number of distinct increments sent, and every acknowledged kv_set must be
readable. Exit code 0 when both hold.
"""
import os
import shlex
import subprocess
import sys
import time
import uuid

from faultkit import (CLIENTS, REPLICAS, Replica, RpcClient, Stats, check, log, outages, report, run_under_load,
                      stop_replicas, wait_for_consumers)

AMQP_URL = os.environ["FAULT_AMQP_URL"]
WORKER_DLL = os.environ["FAULT_WORKER_DLL"]
PG_CTL = shlex.split(os.environ["FAULT_PG_CTL"])
RABBITMQ_NODE = os.environ["RABBITMQ_NODENAME"]
LOAD_SECONDS = float(os.environ.get("FAULT_LOAD_SECONDS", "60"))
RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"fault-{RUN}"


def restart_postgres():
    subprocess.run(PG_CTL + ["-m", "immediate", "-w", "-t", "60", "restart"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def restart_rabbitmq():
    subprocess.run(["rabbitmqctl", "-n", RABBITMQ_NODE, "stop"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["rabbitmq-server", "-detached"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(60):
        if subprocess.run(["rabbitmqctl", "-n", RABBITMQ_NODE, "await_startup", "--timeout", "60"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            return
        time.sleep(1)
    raise RuntimeError("rabbitmq did not come back")


def main():
    environment = dict(os.environ, **{
        "tools__kv_store__adapters__postgres__url": os.environ["FAULT_POSTGRES"],
        "tools__kv_store__adapters__postgres__pool__size": "4",
        "RabbitMq__Host": "127.0.0.1",
        "RabbitMq__Port": os.environ["RABBITMQ_NODE_PORT"],
        "RabbitMq__PrefetchCount": "16",
        "Worker__ShutdownTimeoutSeconds": "20",
        "Serilog__MinimumLevel__Default": "Warning",
        # appsettings.Development.json grants the guest user, which the clients use, a persona.
        "DOTNET_ENVIRONMENT": "Development",
    })
    log(f"starting {REPLICAS} replicas; namespace {NAMESPACE}")
    replicas = [Replica(i, WORKER_DLL, environment, "/var/tmp/kvworker/fault") for i in range(REPLICAS)]
    wait_for_consumers(AMQP_URL, REPLICAS, 90)

    share = LOAD_SECONDS / 7
    faults = [
        (1 * share, "kill replica 0", replicas[0].kill_and_restart),
        (2 * share, "kill replica 1", replicas[1].kill_and_restart),
        (3 * share, "restart PostgreSQL", restart_postgres),
        (4 * share, "restart RabbitMQ", restart_rabbitmq),
        (5 * share, "kill replica 2", replicas[2].kill_and_restart),
        (6 * share, "kill replica 0", replicas[0].kill_and_restart),
    ]
    stats = Stats()
    clients = [RpcClient([AMQP_URL]) for _ in range(CLIENTS)]
    done, load_end = run_under_load(clients, stats, NAMESPACE, RUN, LOAD_SECONDS, faults, replicas)
    seconds = outages(stats, done, load_end)

    wait_for_consumers(AMQP_URL, REPLICAS, 60)
    failures = check(stats, AMQP_URL, NAMESPACE, RUN)
    for name, gap, wait in seconds:
        print(f"{name}: {gap:.1f} s without service, longest request {wait:.1f} s")
    failures += stop_replicas(replicas)
    return report("FAULT TEST", failures,
                  f"{sum(stats.sent.values())} increments, each applied exactly once, through {len(faults)} faults")


if __name__ == "__main__":
    sys.exit(main())
