"""The asyncio client, on aio-pika: one connection, many requests in flight."""
import asyncio
import os
import time
import uuid

import aio_pika
import aiormq.exceptions
import yarl

from . import _protocol
from ._protocol import DEFAULT_TIMEOUT, install_operations
from .client import describe, reply_code_of
from .errors import KvConnectionError


class _Lost(Exception):
    """The connection or channel under a request went away; ``retry`` when sending again may help."""

    def __init__(self, reason, reply_code=None, retry=True):
        super().__init__(reason)
        self.reason, self.reply_code, self.retry = reason, reply_code, retry


class AsyncKvStoreClient:
    """The store's operations as coroutines; results are the original tool's dictionaries.

    One connection and one reply queue serve any number of concurrent calls from any
    number of tasks (replies are matched to their callers by ``correlation_id``).
    ``url`` defaults to $KV_RABBITMQ_URL, else the local broker as guest; ``persona`` and
    ``provider`` are sent with every request unless a call names others. Every call takes
    the keyword-only options ``persona``, ``provider``, ``message_id`` (the request's
    identity: pass the one of a failed call to retry it safely) and ``timeout`` (seconds,
    default the client's); requests carry ``user_id`` and their time-out as ``expiration``.

        async with AsyncKvStoreClient() as kv:
            await kv.increment("researcher", "turns")

    The connection opens on ``async with``, ``connect()`` or the first call, and is opened
    again when it was closed or lost (calls interrupted by a lost connection are sent again
    once, with the same ``message_id``, which the exception carries if that fails too). Use a
    client from one event loop.
    """

    def __init__(self, url=None, *, persona=None, provider=None, timeout=DEFAULT_TIMEOUT, connection_name=None):
        self.url = _protocol.resolve_url(url)
        self.user_id = _protocol.user_of(self.url)
        self.persona = persona
        self.provider = provider
        self.timeout = _protocol.checked_timeout(timeout)
        self.connection_name = connection_name or f"kvworker-python-asyncio pid {os.getpid()}"
        self._connection = None
        self._channel = None
        self._reply_queue = None
        self._pending = {}  # correlation_id -> future of the reply body
        self._opening = None

    async def connect(self):
        await self._open(self.timeout)
        return self

    async def close(self):
        connection, self._connection, self._channel = self._connection, None, None
        self._fail_pending(_Lost("the client was closed", retry=False))
        if connection is not None:
            await connection.close()

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *_):
        await self.close()

    def _is_open(self):
        return self._channel is not None and not self._channel.is_closed

    async def _open(self, timeout):
        """The open channel and its reply queue's name, opened first if need be.

        Callers use these, not self._channel: a close callback may clear that before they get to use it.
        """
        if self._is_open():
            return self._channel, self._reply_queue
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._is_open():
                return self._channel, self._reply_queue
            if self._connection is not None and not self._connection.connected.is_set():
                self._connection = None
            if self._connection is None:
                try:
                    url = yarl.URL(self.url)
                    if "name" not in url.query:  # aio-pika takes the connection's name from the URL
                        url = url.update_query(name=self.connection_name)
                    connection = await aio_pika.connect(url, timeout=timeout)
                except Exception as error:  # aiormq's, pamqp's or the socket's: all mean no connection
                    raise KvConnectionError(f"cannot connect to RabbitMQ at {_protocol.redact(self.url)}: "
                                            f"{describe(error)}", reply_code_of(error)) from error
                connection.close_callbacks.add(self._on_connection_closed)
                self._connection = connection
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            channel.close_callbacks.add(self._on_channel_closed)
            queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
            await queue.consume(self._on_reply, no_ack=True)
            self._reply_queue, self._channel = queue.name, channel
            return channel, queue.name

    def _on_connection_closed(self, connection, error):
        if connection is self._connection:
            self._connection = self._channel = None
            self._fail_pending(_Lost(f"the connection closed: {describe(error) if error else 'no reason given'}",
                                     reply_code_of(error) if error else None))

    def _on_channel_closed(self, channel, error):
        if channel is self._channel:
            self._channel = None
            # RabbitMQ closes a channel over what one request did (a user_id not the connection's, a body over
            # its size limit) without saying which. Every call on the channel may be that one, or may have been
            # applied: each ends with its message_id, as for a lost connection, but is not sent again (the
            # refused one would close the next channel too). The next call opens a new channel.
            self._fail_pending(_Lost(f"RabbitMQ closed the channel: {describe(error) if error else 'no reason given'}",
                                     reply_code_of(error) if error else None,
                                     retry=not isinstance(error, aiormq.exceptions.AMQPChannelError)))

    def _fail_pending(self, lost):
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(lost)

    def _on_reply(self, message):
        future = self._pending.get(message.correlation_id)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def _call(self, queue, request, *, persona=None, provider=None, message_id=None, timeout=None):
        body = _protocol.encode(request, persona or self.persona, provider or self.provider)
        message_id = message_id or _protocol.new_message_id()
        timeout = self.timeout if timeout is None else _protocol.checked_timeout(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for attempt in (1, 2):
            try:
                return await self._send_and_wait(queue, body, message_id, timeout, deadline)
            except KvConnectionError as error:
                if attempt == 1:
                    raise  # connecting failed before anything was sent
                raise _protocol.resending_failed(error, queue, message_id) from error
            except _Lost as lost:
                # Whatever ended it, the request had gone out or was going out: it may have been applied.
                if not lost.retry or attempt == 2 or loop.time() >= deadline:
                    raise KvConnectionError(
                        f"{lost.reason} during {queue}; the request may or may not have been applied: retry with "
                        f"message_id {message_id}", lost.reply_code, message_id) from lost.__cause__

    async def _send_and_wait(self, queue, body, message_id, timeout, deadline):
        loop = asyncio.get_running_loop()
        try:
            channel, reply_queue = await asyncio.wait_for(self._open(timeout), max(deadline - loop.time(), 0.001))
        except asyncio.TimeoutError:
            raise KvConnectionError(f"cannot connect to RabbitMQ at {_protocol.redact(self.url)} "
                                    f"within {timeout} s") from None
        except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError) as error:
            raise _Lost(f"the connection failed: {describe(error)}", reply_code_of(error)) from error
        correlation_id = str(uuid.uuid4())
        future = self._pending[correlation_id] = loop.create_future()
        try:
            # RabbitMQ drops the request once its caller has given up on it (expiration, in ms).
            expiration_ms = _protocol.expiration_ms(max(deadline - loop.time(), 0.001))
            message = aio_pika.Message(
                body, content_type="application/json", reply_to=reply_queue, correlation_id=correlation_id,
                message_id=message_id, user_id=self.user_id, expiration=(expiration_ms + 0.5) / 1000,
                headers=_protocol.deadline_headers(expiration_ms / 1000), timestamp=time.time())
            confirmed = False
            try:
                await asyncio.wait_for(channel.default_exchange.publish(message, queue, mandatory=True),
                                       max(deadline - loop.time(), 0.001))
                confirmed = True
                return _protocol.decode(await asyncio.wait_for(future, max(deadline - loop.time(), 0.001)))
            except aiormq.exceptions.PublishError:
                raise _protocol.no_queue(queue) from None
            except asyncio.TimeoutError:
                if not confirmed:
                    # RabbitMQ did not take the request in time (a memory or disk alarm blocks publishers, or the
                    # network is down), which the worker is not to blame for; the blocking client says the same.
                    raise _protocol.broker_silent(queue, timeout, message_id) from None
                raise _protocol.timed_out(queue, timeout, message_id) from None
            except asyncio.CancelledError:
                # aiormq cancels a publish under way when the client closes its connection; the call
                # then fails as close() said, unless its own task is the one being cancelled.
                if _lost_of(future) is None or _being_cancelled():
                    raise
                raise _lost_of(future) from None
            except aiormq.exceptions.AMQPChannelError as error:
                raise _lost_of(future) or _Lost(f"RabbitMQ closed the channel: {describe(error)}",
                                                reply_code_of(error), retry=False) from error
            except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError,
                    ConnectionError) as error:
                # What closed the connection (close() itself: not sent again) says more than the publish's error.
                raise _lost_of(future) or _Lost(f"the connection failed: {describe(error)}",
                                                reply_code_of(error)) from error
        finally:
            self._pending.pop(correlation_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: a failure set after the caller stopped waiting is not an error


def _lost_of(future):
    """The _Lost the client failed a call's future with (closed, connection or channel lost), else None."""
    if future.done() and not future.cancelled() and isinstance(future.exception(), _Lost):
        return future.exception()
    return None


def _being_cancelled():
    """Whether the running task has been asked to cancel (Python 3.11+; earlier, taken as not)."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return bool(cancelling and cancelling())


def _async_method(operation):
    async def method(self, *args, **kwargs):
        request, options = operation.bind(args, kwargs)
        return await self._call(operation.queue, request, **options)
    return method


install_operations(AsyncKvStoreClient, _async_method)
