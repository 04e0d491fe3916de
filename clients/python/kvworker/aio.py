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
    """What ended an attempt of a call: its connection or channel went away, or close() closed the client.

    ``retry``: whether the call may try again, on a new connection or channel; ``resend``: whether also
    when its request went out (sent again with the same message_id, which the worker never applies twice).
    """

    def __init__(self, reason, reply_code=None, retry=True, resend=True):
        super().__init__(reason)
        self.reason, self.reply_code, self.retry, self.resend = reason, reply_code, retry, resend


def _closed():
    return _Lost("the client was closed", retry=False)


# What aio-pika raises when the connection or channel under an operation fails.
_CONNECTION_ERRORS = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError)


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
        self._pending = {}  # correlation_id -> future of the reply body, for every call in flight (see _call)
        self._opening = None  # the task opening the connection and channel (see _opened)
        self._closes = 0  # how many times close() ran: what began before the last one stops

    async def connect(self):
        """Opens the connection and its channel now, rather than on the first call."""
        if not self._is_open():
            try:
                await asyncio.shield(self._opened(self.timeout))
            except asyncio.TimeoutError:
                raise self._cannot_connect_within(self.timeout) from None
            except _Lost as lost:
                raise KvConnectionError(lost.reason, lost.reply_code) from None
        return self

    async def close(self):
        """Closes the connection. Every call in flight ends at once with KvConnectionError, which carries its
        message_id when its request may have gone out; a connection being opened is closed as it opens."""
        self._closes += 1
        connection, self._connection, self._channel = self._connection, None, None
        opening, self._opening = self._opening, None
        self._fail_pending(_closed())
        if connection is not None:
            await connection.close()
        if opening is not None:
            await asyncio.wait((opening,))  # it closes what it opened (see _open)

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *_):
        await self.close()

    def _is_open(self):
        return self._channel is not None and not self._channel.is_closed

    def _cannot_connect_within(self, timeout):
        return KvConnectionError(f"cannot connect to RabbitMQ at {_protocol.redact(self.url)} within {timeout} s")

    def _opened(self, time_left):
        """The task opening the connection (unless it is open) and a channel, started unless one is under way.

        Concurrent calls share it, and it runs as a task of its own: a call that ends while it runs (closed,
        out of time) leaves it to finish, so that what it opens serves later calls, or is closed (see _open).
        """
        if self._opening is None or self._opening.done():
            # close()'s count is taken now: close() may run before the task starts.
            self._opening = asyncio.ensure_future(asyncio.wait_for(self._open(time_left, self._closes), time_left))
            self._opening.add_done_callback(_retrieved)  # the calls that waited for it may all have ended
        return self._opening

    async def _open(self, time_left, closes):
        """Opens the connection unless it is open, then a channel with its reply queue, for the calls to use.

        ``closes`` is close()'s count when the opening began. A close() since has ended the calls waiting
        for it and left nobody to close what it opens: it is closed here, and the opening fails as closed.
        """
        if closes != self._closes:
            raise _closed()
        if self._connection is not None and not self._connection.connected.is_set():
            self._connection = None
        if self._connection is None:
            try:
                url = yarl.URL(self.url)
                if "name" not in url.query:  # aio-pika takes the connection's name from the URL
                    url = url.update_query(name=self.connection_name)
                connection = await aio_pika.connect(url, timeout=time_left)
            except Exception as error:  # aiormq's, pamqp's or the socket's: all mean no connection
                raise KvConnectionError(f"cannot connect to RabbitMQ at {_protocol.redact(self.url)}: "
                                        f"{describe(error)}", reply_code_of(error)) from error
            if closes != self._closes:
                await connection.close()
                raise _closed()
            connection.close_callbacks.add(self._on_connection_closed)
            self._connection = connection
        try:
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            channel.close_callbacks.add(self._on_channel_closed)
            queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
            await queue.consume(self._on_reply, no_ack=True)
        except (asyncio.CancelledError, *_CONNECTION_ERRORS):
            # aiormq cancels or fails what is under way on a connection that closes, here maybe in close().
            if closes != self._closes:
                raise _closed() from None
            raise
        if closes != self._closes:
            raise _closed()  # close() closed the connection, and this channel with it
        self._reply_queue, self._channel = queue.name, channel

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
            # refused one would close the next channel too). A call not sent yet goes out on a new channel.
            self._fail_pending(_Lost(f"RabbitMQ closed the channel: {describe(error) if error else 'no reason given'}",
                                     reply_code_of(error) if error else None,
                                     resend=not isinstance(error, aiormq.exceptions.AMQPChannelError)))

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
        closes = self._closes
        sent = False  # whether a publish of the request began: from then on it may have been applied
        for attempt in (1, 2):
            # Registered before anything is awaited: close() and a lost connection or channel fail every
            # registered call, so they reach this one wherever it is (opening, publishing, awaiting its reply).
            correlation_id = str(uuid.uuid4())
            reply = self._pending[correlation_id] = loop.create_future()
            try:
                channel, reply_queue = await self._channel_for(reply, timeout, deadline)
                sent = True
                return await self._send_and_wait(channel, reply_queue, correlation_id, reply, queue, body, message_id,
                                                  timeout, deadline)
            except KvConnectionError as error:
                if not sent:
                    raise  # connecting failed before anything was sent
                raise _protocol.resending_failed(error, queue, message_id) from error
            except _Lost as lost:
                # Tried once more: after a lost connection (sent again, with the same message_id), or, when
                # nothing was sent yet, after RabbitMQ closed the channel over another request; never after close().
                if (lost.retry and (lost.resend or not sent) and closes == self._closes
                        and attempt == 1 and loop.time() < deadline):
                    continue
                if not sent:
                    raise KvConnectionError(f"{lost.reason} during {queue}", lost.reply_code) from lost.__cause__
                raise KvConnectionError(
                    f"{lost.reason} during {queue}; the request may or may not have been applied: retry with "
                    f"message_id {message_id}", lost.reply_code, message_id) from lost.__cause__
            finally:
                self._pending.pop(correlation_id, None)
                if reply.done() and not reply.cancelled():
                    reply.exception()  # retrieved: a failure set after the call stopped waiting is not an error

    async def _channel_for(self, reply, timeout, deadline):
        """The open channel and its reply queue's name, opened first if need be.

        Checked again after each opening: the channel it opened may have closed before this call resumed.
        """
        loop = asyncio.get_running_loop()
        while not self._is_open():
            try:
                await _unless_ended(self._opened(max(deadline - loop.time(), 0.001)), reply, deadline)
            except asyncio.TimeoutError:
                if loop.time() >= deadline:
                    raise self._cannot_connect_within(timeout) from None
                # The opening gave up at the time limit of the call that began it; this one has time left.
            except _CONNECTION_ERRORS as error:
                raise _Lost(f"the connection failed: {describe(error)}", reply_code_of(error)) from error
        return self._channel, self._reply_queue

    async def _send_and_wait(self, channel, reply_queue, correlation_id, reply, queue, body, message_id, timeout,
                             deadline):
        loop = asyncio.get_running_loop()
        # RabbitMQ drops the request once its caller has given up on it (expiration, in ms).
        expiration_ms = _protocol.expiration_ms(max(deadline - loop.time(), 0.001))
        message = aio_pika.Message(
            body, content_type="application/json", reply_to=reply_queue, correlation_id=correlation_id,
            message_id=message_id, user_id=self.user_id, expiration=(expiration_ms + 0.5) / 1000,
            headers=_protocol.deadline_headers(expiration_ms / 1000), timestamp=time.time())
        publishing = asyncio.ensure_future(channel.default_exchange.publish(message, queue, mandatory=True))
        publishing.add_done_callback(_retrieved)  # it may fail after the call ended
        try:
            await _unless_ended(publishing, reply, deadline)
        except asyncio.TimeoutError:
            # RabbitMQ did not take the request in time (a memory or disk alarm blocks publishers, or the
            # network is down), which the worker is not to blame for; the blocking client says the same.
            raise _protocol.broker_silent(queue, timeout, message_id) from None
        except aiormq.exceptions.PublishError:
            raise _protocol.no_queue(queue) from None
        except aiormq.exceptions.AMQPChannelError as error:
            raise _Lost(f"RabbitMQ closed the channel: {describe(error)}", reply_code_of(error),
                        resend=False) from error
        except _CONNECTION_ERRORS as error:
            raise _Lost(f"the connection failed: {describe(error)}", reply_code_of(error)) from error
        finally:
            if not reply.done():
                publishing.cancel()  # given up (time-out, or the caller's task cancelled): no confirm is awaited
        try:
            return _protocol.decode(await asyncio.wait_for(reply, max(deadline - loop.time(), 0.001)), queue)
        except asyncio.TimeoutError:
            raise _protocol.timed_out(queue, timeout, message_id) from None


async def _unless_ended(step, reply, deadline):
    """Waits for ``step`` (a task) to finish, raising its failure, unless the call's ``reply`` is done first:
    failed by close() or a lost connection or channel (its _Lost is raised), or answered. Raises
    asyncio.TimeoutError at ``deadline``. Never cancels ``step``, which other calls may share.
    """
    loop = asyncio.get_running_loop()
    await asyncio.wait((step, reply), timeout=max(deadline - loop.time(), 0.001), return_when=asyncio.FIRST_COMPLETED)
    if reply.done():
        reply.result()
    elif not step.done():
        raise asyncio.TimeoutError
    elif step.cancelled():  # aiormq cancels what is under way on a connection that closes
        raise _Lost("the connection closed")
    else:
        step.result()


def _retrieved(task):
    """Marks a task's failure as seen, so that asyncio does not log it: the calls that waited for the task
    have handled it, or ended without needing it."""
    if not task.cancelled():
        task.exception()


def _async_method(operation):
    async def method(self, *args, **kwargs):
        request, options = operation.bind(args, kwargs)
        return await self._call(operation.queue, request, **options)
    return method


install_operations(AsyncKvStoreClient, _async_method)
