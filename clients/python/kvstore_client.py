"""A small Python client for KvWorker, the key-value store served over RabbitMQ.

Uses only pika and RabbitMQ's RPC pattern: a JSON request to the operation's
queue, the reply on an exclusive queue, matched by correlation_id. Results are
the original tool's dictionaries; error replies raise the exception named by
their code, so callers of the ATLAS tool can keep their ``except`` clauses.

    from kvstore_client import KvStoreClient, NamespaceQuotaExceededError

    with KvStoreClient("amqp://guest:guest@localhost:5672/") as kv:
        kv.set("researcher", "plan", {"step": 1}, ttl_seconds=3600)
        kv.get("researcher", "plan")  # {'namespace': ..., 'found': True, 'value': {'step': 1}, 'ttl_seconds': 3599.9}

A client holds one connection and is not thread-safe (pika's BlockingConnection
is not): give each thread its own.
"""
import json
import os
import time
import uuid

import pika

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"


class KeyValueStoreError(Exception):
    """An error reply from the store; ``code`` is the wire code, ``message`` the worker's text.

    Also the code of invalid requests (bad namespace, key, TTL, delta, unknown provider).
    """

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code or type(self).__name__
        self.message = message


class NamespaceQuotaExceededError(KeyValueStoreError):
    """The write would push the namespace over its quota; nothing was changed."""


class GlobalQuotaExceededError(KeyValueStoreError):
    """The write would push the whole store over the global quota; nothing was changed."""


class InvalidValueTypeError(KeyValueStoreError):
    """Increment of a value that is not an integer, or past the integer limit."""


class ValueSerializationError(KeyValueStoreError):
    """The value cannot be stored as JSON."""


class AccessDeniedError(KeyValueStoreError):
    """The persona's policy does not allow the operation."""


class StoreUnavailableError(KeyValueStoreError):
    """The worker could not reach its storage after retries."""


class WorkerUnavailableError(KeyValueStoreError):
    """No worker serves the operation: its queue does not exist, or no reply came in time."""


OPTIONAL_FIELDS = ("ttl_seconds", "persona")

ERRORS = {cls.__name__: cls for cls in (
    KeyValueStoreError, NamespaceQuotaExceededError, GlobalQuotaExceededError, InvalidValueTypeError,
    ValueSerializationError, AccessDeniedError, StoreUnavailableError)}


class KvStoreClient:
    """The four operations (and the usage query) of the store, as blocking calls.

    ``url`` defaults to $KV_RABBITMQ_URL, else the local broker as guest.
    ``persona`` is sent with every request unless a call names another.
    Requests carry the connection's user name as AMQP ``user_id`` (RabbitMQ
    checks it, so the worker can trust it) and a fresh ``message_id``.
    """

    def __init__(self, url=None, persona=None, timeout=30.0):
        parameters = pika.URLParameters(url or os.environ.get("KV_RABBITMQ_URL") or DEFAULT_URL)
        self.user_id = parameters.credentials.username
        self.persona = persona
        self.timeout = timeout
        self._connection = pika.BlockingConnection(parameters)
        self._channel = self._connection.channel()
        # Confirms make a publish wait for the broker's verdict: an unknown queue
        # or a refused request (e.g. a wrong user_id) is reported at once.
        self._channel.confirm_delivery()
        self._reply_queue = self._channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
        self._channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True)
        self._replies = {}

    def get(self, namespace, key, persona=None):
        """kv_get: ``{"namespace", "key", "found", "value"?, "ttl_seconds"?}``."""
        return self._call("kv_get", {"namespace": namespace, "key": key}, persona)

    def set(self, namespace, key, value, ttl_seconds=None, persona=None):
        """kv_set: stores any JSON value; without ``ttl_seconds`` the entry never expires."""
        return self._call("kv_set", {"namespace": namespace, "key": key, "value": value, "ttl_seconds": ttl_seconds}, persona)

    def delete(self, namespace, key, persona=None):
        """kv_delete: ``{"namespace", "key", "deleted": bool}``."""
        return self._call("kv_delete", {"namespace": namespace, "key": key}, persona)

    def increment(self, namespace, key, delta=1, initial_value=0, ttl_seconds=None, persona=None):
        """kv_increment: atomically adds ``delta``, starting from ``initial_value`` when the key is missing."""
        request = {"namespace": namespace, "key": key, "delta": delta, "initial_value": initial_value, "ttl_seconds": ttl_seconds}
        return self._call("kv_increment", request, persona)

    def usage(self, namespace, persona=None):
        """kv_usage: ``{"namespace", "used_bytes", "entries", "quota_bytes", "global_quota_bytes"?}``."""
        return self._call("kv_usage", {"namespace": namespace}, persona)

    def close(self):
        if self._connection.is_open:
            self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _on_reply(self, _channel, _method, properties, body):
        self._replies[properties.correlation_id] = body

    def _call(self, queue, request, persona):
        request["persona"] = persona or self.persona
        # Optional fields are left out when unset; a value of None is a JSON null to store.
        body = json.dumps({name: value for name, value in request.items()
                           if value is not None or name not in OPTIONAL_FIELDS})
        correlation_id = str(uuid.uuid4())
        try:
            self._channel.basic_publish("", queue, body, pika.BasicProperties(
                content_type="application/json",
                reply_to=self._reply_queue,
                correlation_id=correlation_id,
                message_id=str(uuid.uuid4()),
                user_id=self.user_id,
            ), mandatory=True)
        except pika.exceptions.UnroutableError:
            raise WorkerUnavailableError(f"there is no queue {queue}: is a worker running on this virtual host?") from None
        deadline = time.monotonic() + self.timeout
        while correlation_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerUnavailableError(f"no reply on {queue} within {self.timeout} s: is a worker running?")
            self._connection.process_data_events(time_limit=min(remaining, 1))
        reply = json.loads(self._replies.pop(correlation_id))
        if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
            error = reply["error"]
            raise ERRORS.get(error.get("code"), KeyValueStoreError)(error.get("message", ""), error.get("code"))
        return reply
