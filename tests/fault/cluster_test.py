#!/usr/bin/python3
"""Cluster fault test driver: three worker replicas on a 3-node RabbitMQ cluster
(quorum queues) and PostgreSQL under pg_auto_failover, under steady load while
the RabbitMQ node leading kv_increment stops (a replica connected to it moves to
another node) and later starts again, a replica is killed meanwhile, PostgreSQL
fails over to its synchronous standby, and another replica is killed.

Started by scripts/cluster-test.sh once the engines are up; CLUSTER_RIG names
scripts/cluster/engines.sh, whose functions give the addresses and inject the
faults. Each replica is given all three broker nodes and the multi-host
PostgreSQL URL; clients start on different nodes, half with exclusive reply
queues and half with direct reply-to, and move to the next node when theirs
goes away. The direct reply-to clients keep off the node that stops: on
RabbitMQ 3.10 a reply to a direct reply-to client whose node is gone crashes
the publishing channel and closes the replica's connection, again for each
replica that takes the request, until the node is back (see docs/scaling.md).
The replicas require synchronous replication
(adapters:postgres:require_synchronous_replication). After the load, the
standby stops, so pg_auto_failover keeps the primary writable without it
(wait_primary): a kv_set must then be answered StoreUnavailableError and not
be made, and once the standby is back the same request (same message_id) must
be made. Fails unless every increment is applied exactly once, every
acknowledged kv_set is readable, no request goes unanswered, service comes
back within the aims below after each fault, and the standby-away check holds.
"""
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

from faultkit import (CLIENTS, REPLICAS, Replica, RpcClient, Stats, check, log, outages, report, run_under_load,
                      stop_replicas, wait_for_consumers)

RIG = os.environ["CLUSTER_RIG"]
WORKER_DLL = os.environ["CLUSTER_WORKER_DLL"]
LOG_DIR = os.environ["CLUSTER_LOG_DIR"]
LOAD_SECONDS = float(os.environ.get("CLUSTER_LOAD_SECONDS", "60"))
RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"cluster-{RUN}"
# Seconds without service after a fault beyond which the test fails.
AIMS = {"broker": 10, "postgres": 30, "replica": 10}


def rig(*command):
    """Runs a function of engines.sh; returns what it printed (its log lines go to stderr)."""
    return subprocess.run(["bash", "-c", 'source "$0" && "$@"', RIG, *command], check=True,
                          stdout=subprocess.PIPE, text=True).stdout.strip()


AMQP_URLS = rig("kvc_rmq_urls").split()


def worker_connections():
    """The broker node (AMQP port) of each worker replica's connection; the clients' pika connections are left out."""
    rows = rig("kvc_rmq_ctl", "1", "list_connections", "port", "client_properties", "--no-table-headers", "-q")
    return sorted(row.split("\t", 1)[0] for row in rows.splitlines() if '"process_name","KvWorker"' in row)


def standby_away(url):
    """Stops the standby; with the primary writable without it, a kv_set is refused and not made,
    and the same request is made once the standby is back. Returns the failures."""
    primary = rig("kvc_pg_primary_port")
    standby = "2" if primary == rig("kvc_pg_port", "1") else "1"
    log(f"stopping the PostgreSQL standby (node {standby})")
    rig("kvc_pg_stop_node", standby)
    started = time.monotonic()
    while rig("kvc__pg_sql", primary, "postgres", "SHOW synchronous_standby_names") != "":
        if time.monotonic() > started + 90:
            return ["standby away: the primary kept synchronous_standby_names for 90 s"]
        time.sleep(0.5)
    log(f"the primary replicates asynchronously after {time.monotonic() - started:.1f} s")
    client = RpcClient([url])
    request = {"namespace": NAMESPACE, "key": "standby-away", "value": RUN}
    failures = []
    # The worker retries for its request budget (request_timeout_seconds, 10 s) before it answers.
    reply = client.call("kv_set", request, f"{RUN}-standby-away", timeout=30)
    if reply.get("error", {}).get("code") != "StoreUnavailableError" or "synchronous" not in reply["error"].get("message", ""):
        failures.append(f"standby away: kv_set answered {reply}, not StoreUnavailableError naming synchronous replication")
    read = client.call("kv_get", {"namespace": NAMESPACE, "key": "standby-away"}, f"{RUN}-standby-away-read")
    if read.get("found") is not False:
        failures.append(f"standby away: the refused kv_set was made: {read}")
    log("starting the standby again")
    rig("kvc_pg_start_node", standby)
    reply = client.call("kv_set", request, f"{RUN}-standby-away", timeout=30)
    read = client.call("kv_get", {"namespace": NAMESPACE, "key": "standby-away"}, f"{RUN}-standby-away-read-after")
    if "error" in reply or read.get("value") != RUN:
        failures.append(f"standby back: kv_set answered {reply}, kv_get {read}")
    client.close()
    log(f"standby away: {'; '.join(failures) or 'the write was refused, then made once the standby was back'}")
    return failures


def main():
    amqp = urllib.parse.urlparse(AMQP_URLS[0])
    user = amqp.username
    environment = dict(os.environ, **{
        "ATLAS_KV_STORE_URL": rig("kvc_pg_url"),
        "tools__kv_store__adapters__postgres__pool__size": "4",
        # No write is acknowledged that the synchronous standby does not have: in a planned failover,
        # pg_auto_failover 2.0 can keep the old primary writable without it for seconds (README).
        "tools__kv_store__adapters__postgres__require_synchronous_replication": "true",
        "RabbitMq__Hosts": rig("kvc_rmq_hosts"),
        "RabbitMq__VirtualHost": urllib.parse.unquote(amqp.path[1:]),
        "RabbitMq__Username": user,
        "RabbitMq__Password": amqp.password,
        "RabbitMq__QueueType": "quorum",
        "RabbitMq__PrefetchCount": "16",
        "Worker__ShutdownTimeoutSeconds": "20",
        "Serilog__MinimumLevel__Default": "Warning",
        "Serilog__MinimumLevel__Override__KvWorker.Amqp.ConsumingLog": "Information",  # "Connected to RabbitMQ" again after a move
        # The developer persona of appsettings.Development.json, granted to the clients' broker user.
        "DOTNET_ENVIRONMENT": "Development",
        f"tools__kv_store__identities__{user}__personas__0": "developer",
        f"tools__kv_store__identities__{user}__default_persona": "developer",
    })
    log(f"starting {REPLICAS} replicas; namespace {NAMESPACE}")
    os.makedirs(LOG_DIR, exist_ok=True)
    replicas = [Replica(i, WORKER_DLL, environment, LOG_DIR) for i in range(REPLICAS)]
    wait_for_consumers(AMQP_URLS[0], REPLICAS, 90)

    # Asked before the load (rabbitmqctl takes seconds here); killing a replica moves no queue leader.
    leader = rig("kvc_rmq_queue_leader", "kv_increment")
    leader_index = rig("kvc_rmq_index", leader)
    leader_port = rig("kvc_rmq_port", leader_index)
    # Each replica connects to a random node first: restart the last one until one is on the
    # leader's node, so that stopping it also makes a replica move to another node.
    for restarts in range(11):
        ports = worker_connections()
        log(f"kv_increment is led by {leader} (port {leader_port}); replicas are connected to ports {', '.join(ports)}")
        if leader_port in ports:
            break
        if restarts == 10:
            return report("CLUSTER TEST", stop_replicas(replicas) + [
                f"no replica connected to {leader} (port {leader_port}) in 10 restarts: stopping it would move none"], "")
        replicas[-1].stop()
        replicas[-1].start()
        wait_for_consumers(AMQP_URLS[0], REPLICAS, 60)

    def failover():
        log(f"a write through the URL succeeded on the new primary after {rig('kvc_pg_failover')} s")

    share = LOAD_SECONDS / 6
    faults = [
        (1 * share, "stop the RabbitMQ node leading kv_increment", lambda: rig("kvc_rmq_stop_node", leader_index)),
        (2 * share, "SIGKILL replica 0", replicas[0].kill_and_restart),
        (3 * share, "start that RabbitMQ node again", lambda: rig("kvc_rmq_start_node", leader_index)),
        (4 * share, "PostgreSQL failover (pg_autoctl perform failover)", failover),
        (5 * share, "SIGKILL replica 1", replicas[1].kill_and_restart),
    ]
    aims = [AIMS["broker"], AIMS["replica"], AIMS["broker"], AIMS["postgres"], AIMS["replica"]]

    stats = Stats()
    # Exclusive reply queues on every node (the even clients start on nodes 1, 3, 2); direct reply-to off the stopped one.
    elsewhere = [url for j, url in enumerate(AMQP_URLS, 1) if str(j) != leader_index]
    clients = [RpcClient(elsewhere, first=i, direct_reply_to=True) if i % 2 else RpcClient(AMQP_URLS, first=i)
               for i in range(CLIENTS)]
    # Faults 8 s apart at least, so each one's outage is measured on its own.
    done, load_end = run_under_load(clients, stats, NAMESPACE, RUN, LOAD_SECONDS, faults, replicas, settle=8)
    seconds = outages(stats, done, load_end)

    wait_for_consumers(AMQP_URLS[0], REPLICAS, 60)
    failures = check(stats, AMQP_URLS[0], NAMESPACE, RUN)
    print()
    print(f"{'fault':<52} {'without service':>16} {'aim':>5} {'longest request':>16}")
    for (name, gap, wait), aim in zip(seconds, aims):
        print(f"{name:<52} {gap:>14.1f} s {aim:>3} s {wait:>14.1f} s")
        if gap > aim:
            failures.append(f"{name}: {gap:.1f} s without service, aim {aim} s")
    failures += standby_away(AMQP_URLS[0])
    failures += stop_replicas(replicas)
    outage_summary = ", ".join(f"{gap:.1f}" for _, gap, _ in seconds)
    return report("CLUSTER TEST", failures,
                  f"{sum(stats.sent.values())} increments, each applied exactly once; "
                  f"{len(stats.acknowledged_sets)} acknowledged kv_set readable; {stats.resends} resends; "
                  f"seconds without service after each of {len(faults)} faults: {outage_summary}")


if __name__ == "__main__":
    sys.exit(main())
