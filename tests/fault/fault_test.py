#!/usr/bin/python3
"""Fault test driver: replicas under steady increment load while they are
killed, PostgreSQL restarts and RabbitMQ restarts.

Started by scripts/fault-test.sh, which provides servers of its own and the
environment below. Clients retry every request with the same message_id until
it is answered, as a careful client does; at the end every counter must equal
the number of distinct increments sent, and every acknowledged kv_set must be
readable. Exit code 0 when both hold.
"""
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid

import pika

AMQP_URL = os.environ["FAULT_AMQP_URL"]
WORKER_DLL = os.environ["FAULT_WORKER_DLL"]
PG_CTL = shlex.split(os.environ["FAULT_PG_CTL"])
RABBITMQ_NODE = os.environ["RABBITMQ_NODENAME"]
LOAD_SECONDS = float(os.environ.get("FAULT_LOAD_SECONDS", "60"))
REPLICAS = 3
CLIENTS = 6
COUNTERS = 4
REQUEST_TIMEOUT = 5.0  # seconds before a client gives up on a reply and resends
RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"fault-{RUN}"
START = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


class Replica:
    """One worker process, restartable after a kill."""

    def __init__(self, index, environment):
        self.index = index
        self.environment = environment
        self.log_path = f"/var/tmp/kvworker/fault/replica-{index}.log"
        self.process = None
        self.start()

    def start(self):
        log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(["dotnet", WORKER_DLL], env=self.environment,
                                        stdout=log_file, stderr=subprocess.STDOUT,
                                        cwd=os.path.dirname(WORKER_DLL))

    def kill(self):
        self.process.kill()  # SIGKILL
        self.process.wait()

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.terminate()  # SIGTERM: graceful
            try:
                return self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return "killed after 40 s"
        return self.process.returncode


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {f"counter-{c}": 0 for c in range(COUNTERS)}  # distinct increments per counter
        self.answered = 0
        self.resends = 0
        self.unavailable = 0
        self.acknowledged_sets = {}
        self.unexpected = []

    def add(self, field, amount=1):
        with self.lock:
            setattr(self, field, getattr(self, field) + amount)


class RpcClient:
    """RabbitMQ's RPC pattern, reconnecting whenever the broker goes away."""

    def __init__(self):
        self.connection = None
        self.replies = {}

    def connect(self):
        parameters = pika.URLParameters(AMQP_URL)
        parameters.socket_timeout = 3
        parameters.blocked_connection_timeout = 5
        parameters.heartbeat = 10
        self.connection = pika.BlockingConnection(parameters)
        self.channel = self.connection.channel()
        self.reply_queue = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.channel.basic_consume(self.reply_queue, self.on_reply, auto_ack=True)

    def close(self):
        try:
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
        except Exception:  # the connection is being dropped anyway
            pass
        self.connection = None

    def on_reply(self, channel, method, properties, body):
        self.replies[properties.correlation_id] = body

    def call(self, queue, request, message_id):
        if self.connection is None or not self.connection.is_open:
            self.connect()
        correlation_id = uuid.uuid4().hex
        self.channel.basic_publish("", queue, json.dumps(request), pika.BasicProperties(
            content_type="application/json", reply_to=self.reply_queue, correlation_id=correlation_id,
            message_id=message_id, delivery_mode=2, user_id="guest"))
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while correlation_id not in self.replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {message_id} within {REQUEST_TIMEOUT} s")
            self.connection.process_data_events(time_limit=min(remaining, 0.5))
        return json.loads(self.replies.pop(correlation_id))

    def call_until_answered(self, stats, queue, request, message_id, give_up_at):
        """Resends with the same message_id until a real answer comes back."""
        while True:
            if time.monotonic() > give_up_at:
                raise RuntimeError(f"{message_id} unanswered after all retries")
            try:
                reply = self.call(queue, request, message_id)
            except (pika.exceptions.AMQPError, TimeoutError, OSError):
                stats.add("resends")
                self.close()
                time.sleep(0.3)
                continue
            if reply.get("error", {}).get("code") == "StoreUnavailableError":
                stats.add("unavailable")
                time.sleep(0.3)
                continue
            return reply


def client_loop(index, stats, load_ends, give_up_at):
    client = RpcClient()
    i = 0
    while time.monotonic() < load_ends:
        counter = f"counter-{i % COUNTERS}"
        with stats.lock:
            stats.sent[counter] += 1
        reply = client.call_until_answered(stats, "kv_increment", {"namespace": NAMESPACE, "key": counter},
                                           f"{RUN}-inc-{index}-{i}", give_up_at)
        if "value" not in reply:
            stats.unexpected.append(reply)
        stats.add("answered")
        if i % 5 == 0:
            key, value = f"set-{index}-{i}", {"client": index, "i": i}
            reply = client.call_until_answered(stats, "kv_set", {"namespace": NAMESPACE, "key": key, "value": value},
                                               f"{RUN}-set-{index}-{i}", give_up_at)
            if "error" in reply:
                stats.unexpected.append(reply)
            else:
                with stats.lock:
                    stats.acknowledged_sets[key] = value
        i += 1
    client.close()


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


def wait_for_consumers(count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            try:
                queue = connection.channel().queue_declare("kv_increment", passive=True)
                if queue.method.consumer_count >= count:
                    return
            finally:
                connection.close()
        except pika.exceptions.AMQPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"kv_increment did not reach {count} consumers")


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
    replicas = [Replica(i, environment) for i in range(REPLICAS)]
    wait_for_consumers(REPLICAS, 90)

    stats = Stats()
    load_ends = time.monotonic() + LOAD_SECONDS
    give_up_at = load_ends + 120
    clients = [threading.Thread(target=client_loop, args=(i, stats, load_ends, give_up_at), daemon=True)
               for i in range(CLIENTS)]
    for client in clients:
        client.start()
    log(f"{CLIENTS} clients sending increments to {COUNTERS} counters (and a kv_set every 5th) for {LOAD_SECONDS:.0f} s")

    def kill(index):
        replicas[index].kill()
        log(f"SIGKILL replica {index}")
        time.sleep(2)
        replicas[index].start()
        log(f"replica {index} restarted")

    share = LOAD_SECONDS / 7
    faults = [
        (1 * share, "kill replica 0", lambda: kill(0)),
        (2 * share, "kill replica 1", lambda: kill(1)),
        (3 * share, "restart PostgreSQL", restart_postgres),
        (4 * share, "restart RabbitMQ", restart_rabbitmq),
        (5 * share, "kill replica 2", lambda: kill(2)),
        (6 * share, "kill replica 0", lambda: kill(0)),
    ]
    started = time.monotonic()
    next_report = started + 5
    for at, name, fault in faults:
        while time.monotonic() < started + at:
            time.sleep(0.2)
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + 5
                log(f"answered {stats.answered} increments, {len(stats.acknowledged_sets)} sets; "
                    f"{stats.resends} resends, {stats.unavailable} StoreUnavailableError; "
                    f"replicas up: {sum(r.alive() for r in replicas)}")
        log(f"fault: {name}")
        fault()
        log(f"fault done: {name}")

    for client in clients:
        client.join()
    log(f"load finished: {stats.answered} increments answered")

    wait_for_consumers(REPLICAS, 60)
    checker = RpcClient()
    failures = []
    print()
    print(f"{'counter':<12} {'increments sent':>16} {'stored value':>13}")
    for counter, sent in sorted(stats.sent.items()):
        reply = checker.call_until_answered(stats, "kv_get", {"namespace": NAMESPACE, "key": counter},
                                            f"{RUN}-check-{counter}", time.monotonic() + 60)
        value = reply.get("value")
        print(f"{counter:<12} {sent:>16} {value!s:>13}")
        if value != sent:
            failures.append(f"{counter}: {sent} increments sent, value {value}")
    readable = 0
    for key, value in sorted(stats.acknowledged_sets.items()):
        reply = checker.call_until_answered(stats, "kv_get", {"namespace": NAMESPACE, "key": key},
                                            f"{RUN}-check-{key}", time.monotonic() + 60)
        if reply.get("found") and reply.get("value") == value:
            readable += 1
        else:
            failures.append(f"{key}: acknowledged {value}, read {reply}")
    checker.close()
    print(f"acknowledged kv_set: {len(stats.acknowledged_sets)}, readable: {readable}")
    print(f"client resends: {stats.resends}, StoreUnavailableError answers: {stats.unavailable}")
    if stats.unexpected:
        failures.append(f"{len(stats.unexpected)} unexpected replies, first: {stats.unexpected[0]}")

    exits = [replica.stop() for replica in replicas]
    print(f"replica exit codes after SIGTERM: {exits}")
    failures += [f"replica {i} exited with {code}" for i, code in enumerate(exits) if code != 0]

    print()
    if failures:
        print("FAULT TEST FAILED")
        for failure in failures:
            print("  " + failure)
        return 1
    print(f"FAULT TEST PASSED: {sum(stats.sent.values())} increments, each applied exactly once, "
          f"through {len(faults)} faults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
