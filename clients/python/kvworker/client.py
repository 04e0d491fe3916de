"""The blocking client, on pika: one connection, one request at a time."""
import contextlib
import os
import re
import time
import uuid

import pika
import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from . import _protocol
from ._protocol import DEFAULT_TIMEOUT, install_operations
from .errors import KvConnectionError


def describe(error):
    """A readable reason from a pika, aiormq or pamqp exception (some have an empty str())."""
    closing = next((arg for arg in error.args if hasattr(arg, "reply_code") and hasattr(arg, "reply_text")), None)
    if closing is not None:  # a Connection.Close or Channel.Close frame
        text = f"({closing.reply_code}) {closing.reply_text}"
    else:
        text = str(error) or ", ".join(str(arg) or repr(arg) for arg in error.args)
    name = type(error).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name


# The reply codes of the exceptions aiormq raises without one: for a channel the broker closed,
# and for a refused login (RabbitMQ's 403 ACCESS_REFUSED, which aiormq reports only as text).
_REPLY_CODES = {"ChannelAccessRefused": 403, "ChannelNotFoundEntity": 404, "ChannelLockedResource": 405,
                "ChannelPreconditionFailed": 406, "ProbableAuthenticationError": 403}


def reply_code_of(error):
    """The AMQP reply code behind a pika, aiormq or pamqp exception, when there is one."""
    code = getattr(error, "reply_code", None) or _REPLY_CODES.get(type(error).__name__)
    if code is None:
        found = re.search(r"\((\d{3})\)", describe(error))
        code = int(found.group(1)) if found else None
    return code


def _no_longer_than(limit, time_left):
    """A pika time-out (None: no limit) lowered to ``time_left``."""
    return time_left if limit is None else min(limit, time_left)


class _OutOfTime(Exception):
    """The call's time ran out while pika waited on the broker; _time_limit dropped the connection."""


class KvStoreClient:
    """The store's operations as blocking calls; results are the original tool's dictionaries.

    ``url`` defaults to $KV_RABBITMQ_URL, else the local broker as guest. ``persona`` and
    ``provider`` are sent with every request unless a call names others. Every call takes
    the keyword-only options ``persona``, ``provider``, ``message_id`` (the request's
    identity: pass the one of a failed call to retry it safely) and ``timeout`` (seconds,
    default the client's). Requests carry the connection's user name as AMQP ``user_id``
    (RabbitMQ checks it, so the worker can trust it) and their time-out as ``expiration``.

    Error replies raise the exception named by their code; an unreachable broker raises
    KvConnectionError, a missing worker WorkerUnavailableError, no reply in time KvTimeoutError.
    A client holds one connection, reopened when it was closed or lost (a call interrupted by
    a lost connection is sent again once, with the same ``message_id``, which the exception
    carries if that fails too). A call takes little longer than its ``timeout``, connecting and
    RabbitMQ's confirm of the request included. It is not thread-safe (pika's BlockingConnection
    is not): give each thread its own.
    """

    def __init__(self, url=None, persona=None, timeout=DEFAULT_TIMEOUT, provider=None, connection_name=None):
        timeout = _protocol.checked_timeout(timeout)
        self.url = _protocol.resolve_url(url)
        self._parameters = pika.URLParameters(self.url)
        self._parameters.client_properties = {
            "connection_name": connection_name or f"kvworker-python pid {os.getpid()}"}
        if self._parameters.blocked_connection_timeout is None:
            # RabbitMQ stops reading from a connection that publishes during a memory or disk alarm; outside
            # a call's _time_limit (in close(), say) pika would wait on it without limit.
            self._parameters.blocked_connection_timeout = timeout
        # pika's limits on connecting (10 s for the socket, 15 s for the handshake, unless the URL sets
        # others); _open lowers them to the time a call has left.
        self._connect_limits = (self._parameters.socket_timeout, self._parameters.stack_timeout)
        self.user_id = _protocol.user_of(self.url)
        self.persona = persona
        self.provider = provider
        self.timeout = timeout
        self._connection = None
        self._channel = None
        self._awaiting = None
        self._reply = None
        try:
            self._open(time.monotonic() + timeout)
        except _OutOfTime:
            raise KvConnectionError(f"RabbitMQ at {_protocol.redact(self.url)} did not open a channel "
                                    f"within {timeout} s") from None

    def close(self):
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def _open(self, deadline):
        """Opens the connection and the channel unless they are open, giving up at ``deadline`` (time.monotonic())."""
        if self._connection is None or not self._connection.is_open:
            time_left = max(deadline - time.monotonic(), 0.001)
            socket_limit, stack_limit = self._connect_limits
            self._parameters.socket_timeout = _no_longer_than(socket_limit, time_left)
            self._parameters.stack_timeout = _no_longer_than(stack_limit, time_left)
            try:
                self._connection = pika.BlockingConnection(self._parameters)
            except (pika.exceptions.AMQPConnectionError, AMQPConnectorException, OSError) as error:
                # AMQPConnectorException: e.g. the handshake took longer than stack_timeout.
                raise KvConnectionError(f"cannot connect to RabbitMQ at {_protocol.redact(self.url)}: {describe(error)}",
                                        reply_code_of(error)) from error
            self._channel = None
        if self._channel is None or not self._channel.is_open:
            with self._time_limit(deadline):
                channel = self._connection.channel()
                # Confirms make a publish wait for the broker's verdict: an unknown queue
                # or a refused request (e.g. a wrong user_id) is reported at once.
                channel.confirm_delivery()
                self._reply_queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
                channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True)
            self._channel = channel

    @contextlib.contextmanager
    def _time_limit(self, deadline):
        """Drops the connection if the block still waits on the broker at ``deadline``; pika then raises _OutOfTime.

        pika waits for some answers of the broker without limit, such as the confirm of a publish, which
        never comes while RabbitMQ's memory or disk alarm blocks the connection. Dropping the connection
        from a timer on its I/O loop is what pika itself does when blocked_connection_timeout expires.
        """
        connection = self._connection._impl  # the asynchronous connection under pika's blocking one
        timer = connection._adapter_call_later(max(deadline - time.monotonic(), 0),
                                               lambda: connection._terminate_stream(_OutOfTime()))
        try:
            yield
        finally:
            connection._adapter_remove_timeout(timer)

    def _on_reply(self, _channel, _method, properties, body):
        if properties.correlation_id == self._awaiting:
            self._reply = body

    def _call(self, queue, request, *, persona=None, provider=None, message_id=None, timeout=None):
        body = _protocol.encode(request, persona or self.persona, provider or self.provider)
        message_id = message_id or _protocol.new_message_id()
        timeout = self.timeout if timeout is None else _protocol.checked_timeout(timeout)
        deadline = time.monotonic() + timeout
        for attempt in (1, 2):
            try:
                self._open(deadline)
                return self._send_and_wait(queue, body, message_id, timeout, deadline)
            except KvConnectionError as error:
                if attempt == 1:
                    raise  # connecting failed before anything was sent
                raise _protocol.resending_failed(error, queue, message_id) from error
            except _OutOfTime:
                raise _protocol.broker_silent(queue, timeout, message_id) from None
            except pika.exceptions.AMQPConnectionError as error:
                # The connection was lost; the retry (same message_id) is answered without a second application.
                if attempt == 2 or time.monotonic() >= deadline:
                    raise KvConnectionError(
                        f"lost the connection to RabbitMQ during {queue}: {describe(error)}; the request may or may not "
                        f"have been applied: retry with message_id {message_id}", reply_code_of(error), message_id) from error
            except pika.exceptions.AMQPChannelError as error:
                raise KvConnectionError(f"RabbitMQ closed the channel during {queue}: {describe(error)}",
                                        reply_code_of(error), message_id) from error

    def _send_and_wait(self, queue, body, message_id, timeout, deadline):
        correlation_id = str(uuid.uuid4())
        self._awaiting, self._reply = correlation_id, None
        properties = pika.BasicProperties(
            content_type="application/json",
            reply_to=self._reply_queue,
            correlation_id=correlation_id,
            message_id=message_id,
            user_id=self.user_id,
            # RabbitMQ drops the request once its caller has given up on it, and so does the worker.
            expiration=str(_protocol.expiration_ms(max(deadline - time.monotonic(), 0.001))),
            headers=_protocol.deadline_headers(max(deadline - time.monotonic(), 0.001)),
            timestamp=int(time.time()),
        )
        try:
            with self._time_limit(deadline):
                self._channel.basic_publish("", queue, body, properties, mandatory=True)
        except pika.exceptions.UnroutableError:
            raise _protocol.no_queue(queue) from None
        while self._reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._awaiting = None
                raise _protocol.timed_out(queue, timeout, message_id)
            self._connection.process_data_events(time_limit=min(remaining, 1))
        reply, self._awaiting, self._reply = self._reply, None, None
        return _protocol.decode(reply, queue)


def _blocking_method(operation):
    def method(self, *args, **kwargs):
        request, options = operation.bind(args, kwargs)
        return self._call(operation.queue, request, **options)
    return method


install_operations(KvStoreClient, _blocking_method)
