"""Shared fixtures of the kvworker tests, which run against a worker named by $KV_RABBITMQ_URL.

scripts/python-tests.sh starts one on a fresh virtual host, whose broker user may act as
the personas "tester" (read and write, its default) and "reader" (read only), with the
Redis provider registered. Without a worker the tests fail; they never skip.
"""
import asyncio
import functools
import os
import socket
import subprocess
import threading
import urllib.parse
import uuid
from pathlib import Path

import pika
import pytest

import kvworker

URL = os.environ.get("KV_RABBITMQ_URL") or kvworker.DEFAULT_URL
REPO_ROOT = Path(__file__).resolve().parents[3]
# The stand-in for ATLAS's modules/Tools/Base_Tools/kv_store.py.
ATLAS_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "atlas"
CLOSED_PORT_URL = "amqp://guest:guest@127.0.0.1:1/%2F"  # nothing listens on port 1


def new_namespace():
    return "py-" + uuid.uuid4().hex


@pytest.fixture
def ns():
    return new_namespace()


@pytest.fixture
def kv():
    with kvworker.KvStoreClient(URL) as client:
        yield client


def run_async(test):
    """Runs an async test function in its own event loop (no pytest plugin needed)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run


def close_connection_named(name):
    """Has RabbitMQ close the connections that gave themselves ``name`` (as a broker restart would)."""
    listing = subprocess.run(["rabbitmqctl", "-q", "list_connections", "--no-table-headers", "pid", "client_properties"],
                             capture_output=True, text=True, check=True).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if f'{{"connection_name","{name}"}}' in line]
    assert pids, f"no connection named {name}"
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "closed by a test"], check=True)
    return len(pids)


def lose_connection_after_publishing(client, reconnect_url):
    """Has an AsyncKvStoreClient lose its connection right after its next publish, and connect again to
    ``reconnect_url``. Returns the list the message_id of that publish is added to."""
    sent = []
    exchange = client._channel.default_exchange
    publish = exchange.publish

    async def publish_then_lose_the_connection(message, routing_key, **options):
        # Its reply goes nowhere, as on a connection lost before the reply came (the client takes a reply
        # that arrives while its connection closes).
        message.reply_to = f"py-nowhere-{uuid.uuid4().hex}"
        await publish(message, routing_key, **options)
        sent.append(message.message_id)
        client.url = reconnect_url
        await client._connection.close()
        raise ConnectionResetError("the connection was lost after publishing")

    exchange.publish = publish_then_lose_the_connection
    return sent


class StallingRelay:
    """A TCP relay to the broker of ``url`` whose ``stall()`` holds back every byte from then on.

    That is what a client sees of a RabbitMQ whose memory or disk alarm blocks publishers (it stops
    reading from their connections), or of a network that went silent. ``url`` is the relay's.
    """

    def __init__(self, url):
        broker = urllib.parse.urlsplit(url)
        self._broker = (broker.hostname, broker.port or 5672)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets = [self._listener]
        self._passing = threading.Event()
        self._passing.set()
        self.url = urllib.parse.urlunsplit(broker._replace(
            netloc=f"{broker.netloc.rpartition('@')[0]}@127.0.0.1:{self._listener.getsockname()[1]}"))
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self):
        self._passing.clear()

    def resume(self):
        self._passing.set()

    def close(self):
        self.resume()
        for sock in self._sockets:
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
                broker = socket.create_connection(self._broker)
            except OSError:
                return  # closed
            self._sockets += [client, broker]
            for source, sink in ((client, broker), (broker, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source, sink):
        try:
            while data := source.recv(65536):
                self._passing.wait()  # after recv: bytes read before a stall are held back too
                sink.sendall(data)
        except OSError:
            pass
        finally:
            source.close()
            sink.close()


class ImpostorQueue:
    """A queue of the test's own on which another program, not a worker, answers every request with ``body``."""

    def __init__(self, body):
        self.body = body
        self.name = f"py-impostor-{uuid.uuid4().hex}"
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._answer, daemon=True)

    def _answer(self):
        with pika.BlockingConnection(pika.URLParameters(URL)) as connection:
            channel = connection.channel()
            channel.queue_declare(self.name, auto_delete=True)

            def reply(ch, method, properties, _body):
                ch.basic_publish("", properties.reply_to, self.body,
                                 pika.BasicProperties(correlation_id=properties.correlation_id))
            channel.basic_consume(self.name, reply, auto_ack=True)
            self._ready.set()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.1)

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(10), "the impostor did not start consuming"
        return self.name

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(10)
