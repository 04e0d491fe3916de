"""What the fault tests share: worker replicas as processes, clients that resend
each request with the same message_id until it is answered (as a careful client
does), faults run on a schedule while they send, the seconds without service
after each fault, and the final check that every increment was applied exactly
once and every acknowledged kv_set is readable.

Used by fault_test.py (one broker and one PostgreSQL) and cluster_test.py (a
RabbitMQ cluster and PostgreSQL under pg_auto_failover).
"""
import json
import os
import subprocess
import threading
import time
import urllib.parse
import uuid

import pika

REPLICAS = 3
CLIENTS = 6
REQUEST_TIMEOUT = 5.0  # seconds before a client gives up on a reply and resends
GIVE_UP = 120.0  # seconds after which a request still unanswered fails the test
COUNTERS = 4
START = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


class Replica:
    """One worker process, restartable after a kill."""

    def __init__(self, index, worker_dll, environment, log_dir):
        self.index = index
        self.worker_dll = worker_dll
        self.environment = environment
        self.log_path = os.path.join(log_dir, f"replica-{index}.log")
        self.process = None
        self.start()

    def start(self):
        with open(self.log_path, "a") as log_file:
            self.process = subprocess.Popen(["dotnet", self.worker_dll], env=self.environment,
                                            stdout=log_file, stderr=subprocess.STDOUT,
                                            cwd=os.path.dirname(self.worker_dll))

    def kill(self):
        self.process.kill()  # SIGKILL
        self.process.wait()

    def kill_and_restart(self):
        self.kill()
        log(f"SIGKILL replica {self.index}")
        time.sleep(2)
        self.start()
        log(f"replica {self.index} restarted")

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
        self.unanswered = []  # requests given up after GIVE_UP seconds
        self.stopped = []  # clients that stopped on an error of their own, such as a reply they could not read
        self.calls = []  # (first sent, answered) of every request, monotonic seconds

    def add(self, field, amount=1):
        with self.lock:
            setattr(self, field, getattr(self, field) + amount)


class RpcClient:
    """RabbitMQ's RPC pattern, reconnecting whenever the broker goes away: to the next
    of `urls` (cluster nodes), replies on an exclusive queue or by direct reply-to."""

    def __init__(self, urls, first=0, direct_reply_to=False):
        self.urls = urls
        self.node = first
        self.direct_reply_to = direct_reply_to
        self.user_id = urllib.parse.urlparse(urls[0]).username
        self.connection = None
        self.replies = {}

    def connect(self):
        parameters = pika.URLParameters(self.urls[self.node % len(self.urls)])
        parameters.socket_timeout = 3
        parameters.blocked_connection_timeout = 5
        parameters.heartbeat = 10
        self.connection = pika.BlockingConnection(parameters)
        self.channel = self.connection.channel()
        if self.direct_reply_to:
            self.reply_queue = "amq.rabbitmq.reply-to"
        else:
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

    def call(self, queue, request, message_id, timeout=REQUEST_TIMEOUT):
        if self.connection is None or not self.connection.is_open:
            self.connect()
        correlation_id = uuid.uuid4().hex
        self.channel.basic_publish("", queue, json.dumps(request), pika.BasicProperties(
            content_type="application/json", reply_to=self.reply_queue, correlation_id=correlation_id,
            message_id=message_id, delivery_mode=2, user_id=self.user_id))
        deadline = time.monotonic() + timeout
        while correlation_id not in self.replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to {message_id} within {timeout} s")
            self.connection.process_data_events(time_limit=min(remaining, 0.5))
        return json.loads(self.replies.pop(correlation_id))

    def call_until_answered(self, stats, queue, request, message_id):
        """Resends with the same message_id until a real answer comes back; a lost
        connection moves the client to the next node."""
        started = time.monotonic()
        while True:
            if time.monotonic() > started + GIVE_UP:
                raise RuntimeError(f"{message_id} unanswered after all retries")
            try:
                reply = self.call(queue, request, message_id)
            except (pika.exceptions.AMQPError, TimeoutError, OSError):
                stats.add("resends")
                self.close()
                self.node += 1
                time.sleep(0.3)
                continue
            if reply.get("error", {}).get("code") == "StoreUnavailableError":
                stats.add("unavailable")
                time.sleep(0.3)
                continue
            if "error" not in reply:  # an error is no service
                with stats.lock:
                    stats.calls.append((started, time.monotonic()))
            return reply


def client_loop(client, index, stats, namespace, run, load_over):
    """Increments the counters in turn, and sets a key every 5th request, until load_over is set."""
    try:
        send_until(client, index, stats, namespace, run, load_over)
    except RuntimeError as unanswered:
        with stats.lock:
            stats.unanswered.append(str(unanswered))
    except Exception as error:  # reported by check()
        with stats.lock:
            stats.stopped.append(f"client {index}: {error!r}")
    client.close()


def send_until(client, index, stats, namespace, run, load_over):
    i = 0
    while not load_over.is_set():
        counter = f"counter-{i % COUNTERS}"
        with stats.lock:
            stats.sent[counter] += 1
        reply = client.call_until_answered(stats, "kv_increment", {"namespace": namespace, "key": counter},
                                           f"{run}-inc-{index}-{i}")
        if "value" not in reply:
            stats.unexpected.append(reply)
        stats.add("answered")
        if i % 5 == 0:
            key, value = f"set-{index}-{i}", {"client": index, "i": i}
            reply = client.call_until_answered(stats, "kv_set", {"namespace": namespace, "key": key, "value": value},
                                               f"{run}-set-{index}-{i}")
            if "error" in reply:
                stats.unexpected.append(reply)
            else:
                with stats.lock:
                    stats.acknowledged_sets[key] = value
        i += 1


def wait_for_consumers(url, count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(url))
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


def run_under_load(clients, stats, namespace, run, load_seconds, faults, replicas, settle=0.0):
    """Runs one thread per client for load_seconds while `faults` ((seconds after the
    start, name, callable)) run in order, each at least `settle` seconds after the one
    before ended (a fault's effects may come at the end of its command), and the load
    goes on `settle` seconds past the last. Returns (name, started, ended) per fault,
    and the end of the load."""
    load_over = threading.Event()
    threads = [threading.Thread(target=client_loop, args=(client, i, stats, namespace, run, load_over), daemon=True)
               for i, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    log(f"{len(clients)} clients sending increments to {COUNTERS} counters (and a kv_set every 5th) for {load_seconds:.0f} s")

    started = time.monotonic()
    next_report = started + 5

    def wait_until(moment):
        nonlocal next_report
        while time.monotonic() < moment:
            time.sleep(0.2)
            if time.monotonic() >= next_report:
                next_report = time.monotonic() + 5
                log(f"answered {stats.answered} increments, {len(stats.acknowledged_sets)} sets; "
                    f"{stats.resends} resends, {stats.unavailable} StoreUnavailableError; "
                    f"replicas up: {sum(r.alive() for r in replicas)}")

    done = []
    for at, name, fault in faults:
        wait_until(max(started + at, done[-1][2] + settle if done else 0))
        log(f"fault: {name}")
        fault_started = time.monotonic()
        fault()
        done.append((name, fault_started, time.monotonic()))
        log(f"fault done: {name}")
    wait_until(max(started + load_seconds, done[-1][2] + settle if done else 0))
    load_over.set()
    for thread in threads:
        thread.join()
    log(f"load finished: {stats.answered} increments answered")
    return done, time.monotonic()


def outages(stats, faults, load_end):
    """Per fault: the longest time without any answer from its start until the next
    fault (or the end of the load), and the longest a single request waited (resends
    included) among those pending meanwhile. Returns [(name, seconds without service,
    longest wait)]. Call it before check(), whose own requests come after the load."""
    answered = sorted(end for _, end in stats.calls)
    result = []
    for i, (name, started, _) in enumerate(faults):
        window_end = faults[i + 1][1] if i + 1 < len(faults) else load_end
        times = [started] + [t for t in answered if started < t < window_end] + [window_end]
        gap = max(b - a for a, b in zip(times, times[1:]))
        wait = max((end - begin for begin, end in stats.calls if end > started and begin < window_end), default=0.0)
        result.append((name, gap, wait))
    return result


def check(stats, url, namespace, run):
    """Reads every counter and acknowledged key back; returns the failures."""
    checker = RpcClient([url])
    failures = []
    print()
    print(f"{'counter':<12} {'increments sent':>16} {'stored value':>13}")
    for counter, sent in sorted(stats.sent.items()):
        reply = checker.call_until_answered(stats, "kv_get", {"namespace": namespace, "key": counter},
                                            f"{run}-check-{counter}")
        value = reply.get("value")
        print(f"{counter:<12} {sent:>16} {value!s:>13}")
        if value != sent:
            failures.append(f"{counter}: {sent} increments sent, value {value}")
    readable = 0
    for key, value in sorted(stats.acknowledged_sets.items()):
        reply = checker.call_until_answered(stats, "kv_get", {"namespace": namespace, "key": key},
                                            f"{run}-check-{key}")
        if reply.get("found") and reply.get("value") == value:
            readable += 1
        else:
            failures.append(f"{key}: acknowledged {value}, read {reply}")
    checker.close()
    print(f"acknowledged kv_set: {len(stats.acknowledged_sets)}, readable: {readable}")
    print(f"client resends: {stats.resends}, StoreUnavailableError answers: {stats.unavailable}")
    if stats.unanswered:
        failures.append(f"{len(stats.unanswered)} clients stopped waiting, first: {stats.unanswered[0]}")
    if stats.stopped:
        failures.append(f"{len(stats.stopped)} clients stopped on an error, first: {stats.stopped[0]}")
    if stats.unexpected:
        failures.append(f"{len(stats.unexpected)} unexpected replies, first: {stats.unexpected[0]}")
    return failures


def stop_replicas(replicas):
    """SIGTERM to every replica; returns the failures (a non-zero exit)."""
    exits = [replica.stop() for replica in replicas]
    print(f"replica exit codes after SIGTERM: {exits}")
    return [f"replica {i} exited with {code}" for i, code in enumerate(exits) if code != 0]


def report(title, failures, summary):
    print()
    if failures:
        print(f"{title} FAILED")
        for failure in failures:
            print("  " + failure)
        return 1
    print(f"{title} PASSED: {summary}")
    return 0
