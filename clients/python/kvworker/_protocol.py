"""The wire contract as both clients use it: the table of operations, request bodies,
AMQP properties and replies. Adding an operation to the clients is one row in OPERATIONS.
"""
import inspect
import json
import math
import numbers
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

from .errors import (KeyValueStoreError, KvConnectionError, KvInvalidReplyError, KvTimeoutError, ValueSerializationError,
                     WorkerUnavailableError, error_from_reply)

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"
DEFAULT_TIMEOUT = 30.0
# The longest time-out a call takes, a day, as KvWorker.Client's KvCallOptions.MaxTimeout.
MAX_TIMEOUT = 86400.0

# Keyword-only options of every operation: who asks, which adapter, the request's
# identity (reuse it to retry safely) and the time-out in seconds.
CALL_OPTIONS = ("persona", "provider", "message_id", "timeout")


@dataclass(frozen=True)
class Operation:
    """One operation of the worker: the client method, its queue and its request fields.

    ``fields`` are always sent (None as JSON null); ``options`` are (name, default)
    pairs left out of the request while None.
    """
    method: str
    queue: str
    fields: tuple
    options: tuple = ()
    doc: str = ""
    signature: inspect.Signature = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
        parameters = [inspect.Parameter(name, positional) for name in self.fields]
        parameters += [inspect.Parameter(name, positional, default=default) for name, default in self.options]
        parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in CALL_OPTIONS]
        object.__setattr__(self, "signature", inspect.Signature(parameters))

    def bind(self, args, kwargs):
        """(request fields, call options) from a method's arguments."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        request = {name: values[name] for name in self.fields}
        request.update((name, values[name]) for name, _ in self.options if values[name] is not None)
        return request, {name: values[name] for name in CALL_OPTIONS}


OPERATIONS = (
    Operation("get", "kv_get", ("namespace", "key"),
              doc='kv_get: ``{"namespace", "key", "found", "value"?, "ttl_seconds"?, "version"?}``.'),
    Operation("set", "kv_set", ("namespace", "key", "value"), (("ttl_seconds", None), ("if_version", None)),
              doc="kv_set: stores any JSON value; without ``ttl_seconds`` the entry never expires.\n\n"
                  "``if_version`` (for workers with compare-and-set): write only if the live entry has that "
                  "version, 0 = only if absent; else VersionConflictError."),
    Operation("delete", "kv_delete", ("namespace", "key"), (("if_version", None),),
              doc='kv_delete: ``{"namespace", "key", "deleted": bool}``; ``if_version`` as for set.'),
    Operation("increment", "kv_increment", ("namespace", "key"),
              (("delta", 1), ("initial_value", 0), ("ttl_seconds", None)),
              doc="kv_increment: atomically adds ``delta``, starting from ``initial_value`` when the key is "
                  "missing; without ``ttl_seconds`` the entry keeps its TTL."),
    Operation("usage", "kv_usage", ("namespace",),
              doc='kv_usage: ``{"namespace", "used_bytes", "entries", "quota_bytes", "global_quota_bytes"?}``.'),
    # Served by workers that have them (see the README's wire contract).
    Operation("list", "kv_list", ("namespace",), (("prefix", None), ("limit", None), ("cursor", None)),
              doc='kv_list: ``{"namespace", "keys": [{"key", "size_bytes", "version", "ttl_seconds"?}], '
                  '"next_cursor"?}``, one page in key order.'),
    Operation("touch", "kv_touch", ("namespace", "key", "ttl_seconds"),
              doc="kv_touch: sets the entry's TTL (None makes it persistent) without rewriting its value."),
    Operation("get_many", "kv_get_many", ("namespace", "keys"),
              doc='kv_get_many: ``{"namespace", "entries": [a kv_get reply per key, in order]}``, at most 100 keys.'),
)


def install_operations(cls, make_method):
    """Adds a method per operation to ``cls``; ``make_method(operation)`` returns its function."""
    for operation in OPERATIONS:
        method = make_method(operation)
        method.__name__ = operation.method
        method.__qualname__ = f"{cls.__name__}.{operation.method}"
        method.__doc__ = operation.doc
        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        method.__signature__ = operation.signature.replace(
            parameters=[self_parameter, *operation.signature.parameters.values()])
        setattr(cls, operation.method, method)
    return cls


def resolve_url(url):
    return url or os.environ.get("KV_RABBITMQ_URL") or DEFAULT_URL


def user_of(url):
    """The user name of an AMQP URL, which requests carry as ``user_id``."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).username or "guest")


def redact(url):
    """The URL without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{netloc[0].partition(':')[0]}:***@{netloc[2]}"))


def encode(request, persona, provider):
    """The JSON body of a request; ValueSerializationError when it cannot be JSON."""
    ttl = request.get("ttl_seconds")
    if isinstance(ttl, float) and not math.isfinite(ttl):
        # JSON has no infinity or NaN, so json.dumps would refuse the request as if the value were at fault;
        # an invalid TTL is the worker's KeyValueStoreError, with the worker's words.
        raise KeyValueStoreError(f"ttl_seconds must be a positive, finite number of seconds, not {ttl!r}")
    body = dict(request)
    if persona is not None:
        body["persona"] = persona
    if provider is not None:
        body["provider"] = provider
    try:
        return json.dumps(body, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ValueSerializationError(f"the request cannot be sent as JSON: {error}") from None


def checked_timeout(timeout):
    """``timeout`` when a call can wait that many seconds (above 0, at most a day), else ValueError: nothing is sent."""
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT:.0f} (a day), "
                         f"not {timeout!r}")
    return timeout


def new_message_id():
    """A fresh UUIDv7 (RFC 9562): its text starts with the time in milliseconds, so the identities the
    worker keeps of recent requests grow at one end of their index instead of at random places in it."""
    if hasattr(uuid, "uuid7"):  # Python 3.14
        return str(uuid.uuid7())
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = ((time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (random_bits >> 62 & 0xFFF) << 64
             | 0b10 << 62 | random_bits & (1 << 62) - 1)
    return str(uuid.UUID(int=value))


def expiration_ms(timeout):
    """The AMQP ``expiration`` of a request: its time-out in whole milliseconds (at least 1)."""
    return max(1, round(timeout * 1000))


DEADLINE_HEADER = "kv-deadline"


def deadline_headers(timeout):
    """The ``kv-deadline`` header: when the caller stops waiting, in Unix milliseconds.

    The worker drops, unapplied and unanswered, a request it takes after that
    moment (RabbitMQ's ``expiration`` only covers the time the request is queued).
    """
    return {DEADLINE_HEADER: int((time.time() + timeout) * 1000)}


def decode(body, queue):
    """A reply's dictionary, or the exception of an error reply raised.

    Every reply of a worker is a JSON object: anything else came from another program on ``queue``.
    """
    try:
        reply = json.loads(body)
    except ValueError as error:  # not UTF-8, or not JSON
        raise invalid_reply(queue, f"is not JSON ({error})") from None
    if not isinstance(reply, dict):
        raise invalid_reply(queue, f"is not a JSON object ({type(reply).__name__})")
    if isinstance(reply.get("error"), dict):
        raise error_from_reply(reply["error"])
    return reply


def invalid_reply(queue, problem):
    return KvInvalidReplyError(
        f"the reply on {queue} {problem}, which no KvWorker worker sends: is another program consuming {queue}?", queue)


def no_queue(queue):
    return WorkerUnavailableError(f"there is no queue {queue}: is a worker running on this virtual host?")


def timed_out(queue, timeout, message_id):
    return KvTimeoutError(
        f"no reply on {queue} within {timeout} s (message_id {message_id}): is a worker running? The request "
        "may or may not have been applied; retry with the same message_id to be safe", message_id)


def broker_silent(queue, timeout, message_id):
    return KvTimeoutError(
        f"RabbitMQ did not answer within {timeout} s during {queue} (message_id {message_id}): is a memory or disk "
        "alarm blocking publishers, or is the network down? The request may or may not have been applied; retry "
        "with the same message_id to be safe", message_id)


def resending_failed(error, queue, message_id):
    """``error``, a KvConnectionError from connecting again to resend a request, with the request's message_id."""
    return KvConnectionError(
        f"{error.message}, after the connection was lost during {queue}; the request may or may not have been "
        f"applied: retry with message_id {message_id}", error.reply_code, message_id)
