"""The asyncio client, AsyncKvStoreClient, against the worker."""
import asyncio
import datetime
import uuid

import aio_pika
import pika
import pytest

from conftest import (CLOSED_PORT_URL, URL, ImpostorQueue, StallingRelay, close_connection_named, lose_connection_after_publishing,
                      run_async)
from kvworker import (AccessDeniedError, AsyncKvStoreClient, InvalidValueTypeError, KeyValueStoreError,
                      KvConnectionError, KvInvalidReplyError, KvTimeoutError, NamespaceQuotaExceededError,
                      ValueSerializationError, WorkerUnavailableError)


@run_async
async def test_the_operations_answer_with_the_original_tools_dictionaries(ns):
    async with AsyncKvStoreClient(URL) as kv:
        written = await kv.set(ns, "plan", {"steps": ["search"]}, ttl_seconds=60)
        assert (written["namespace"], written["key"], written["value"], written["ttl_seconds"]) == \
            (ns, "plan", {"steps": ["search"]}, 60)
        got = await kv.get(ns, "plan")
        assert got["found"] and got["value"] == {"steps": ["search"]} and 0 < got["ttl_seconds"] <= 60
        assert (await kv.increment(ns, "turns", delta=2, initial_value=10))["value"] == 12
        usage = await kv.usage(ns)
        assert usage["entries"] == 2 and usage["used_bytes"] > 0
        assert await kv.delete(ns, "plan") == {"namespace": ns, "key": "plan", "deleted": True}
        assert await kv.get(ns, "plan") == {"namespace": ns, "key": "plan", "found": False}


@run_async
async def test_eight_tasks_of_fifty_increments_on_one_key_over_one_connection_count_exactly_400(ns):
    async with AsyncKvStoreClient(URL) as kv:
        connection = kv._connection

        async def worker():
            for _ in range(50):
                await kv.increment(ns, "counter")

        await asyncio.gather(*(worker() for _ in range(8)))
        assert (await kv.get(ns, "counter"))["value"] == 400
        assert kv._connection is connection


@run_async
async def test_many_requests_in_flight_each_get_their_own_reply(ns):
    async with AsyncKvStoreClient(URL) as kv:
        await asyncio.gather(*(kv.set(ns, f"k{i}", i) for i in range(100)))
        replies = await asyncio.gather(*(kv.get(ns, f"k{i}") for i in range(100)))
        assert [(reply["key"], reply["value"]) for reply in replies] == [(f"k{i}", i) for i in range(100)]


@run_async
async def test_error_replies_raise_the_exceptions_named_by_their_codes(ns):
    async with AsyncKvStoreClient(URL) as kv:
        await kv.set(ns, "text", "not a number")
        with pytest.raises(InvalidValueTypeError) as raised:
            await kv.increment(ns, "text")
        assert raised.value.code == "InvalidValueTypeError"
        quota = (await kv.usage(ns))["quota_bytes"]
        with pytest.raises(NamespaceQuotaExceededError):
            await kv.set(ns, "big", "x" * quota)
        with pytest.raises(KeyValueStoreError) as raised:
            await kv.set(ns, "k", 1, ttl_seconds=0)
        assert type(raised.value) is KeyValueStoreError
        with pytest.raises(ValueSerializationError):
            await kv.set(ns, "k", float("inf"))
        with pytest.raises(KeyValueStoreError, match="ttl_seconds must be a positive, finite number") as raised:
            await kv.set(ns, "k", 1, ttl_seconds=float("inf"))  # an invalid TTL, not a value that cannot be JSON
        assert type(raised.value) is KeyValueStoreError
        with pytest.raises(AccessDeniedError):
            await kv.increment(ns, "c", persona="reader")
        # The failures did not disturb the connection.
        assert (await kv.increment(ns, "c"))["value"] == 1


@run_async
async def test_a_retry_with_the_same_message_id_gets_the_first_answer_and_is_not_applied_twice(ns):
    async with AsyncKvStoreClient(URL) as kv:
        message_id = str(uuid.uuid4())
        first, again = await asyncio.gather(kv.increment(ns, "c", message_id=message_id),
                                            kv.increment(ns, "c", message_id=message_id))
        assert first == again
        assert await kv.increment(ns, "c", message_id=message_id) == first
        assert (await kv.get(ns, "c"))["value"] == 1


@run_async
async def test_a_request_nobody_answers_times_out_with_its_message_id_and_expires_in_its_queue(ns):
    async with AsyncKvStoreClient(URL, timeout=2.0) as kv:
        connection = await aio_pika.connect(URL)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"py-unanswered-{uuid.uuid4().hex}")
            call = asyncio.create_task(kv._call(queue.name, {"namespace": ns}, message_id="retry-me"))
            message = None
            for _ in range(40):
                message = await queue.get(no_ack=True, fail=False)
                if message is not None:
                    break
                await asyncio.sleep(0.05)
            with pytest.raises(KvTimeoutError) as raised:
                await call
            assert isinstance(raised.value, WorkerUnavailableError) and raised.value.message_id == "retry-me"
            assert "may or may not have been applied" in raised.value.message
            assert message is not None and message.message_id == "retry-me"
            assert 1000 <= int(message.properties.expiration) <= 2000
            sent_ms = message.timestamp.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
            assert abs(sent_ms + int(message.properties.expiration) - message.headers["kv-deadline"]) <= 1500
            assert (message.content_type, message.user_id) == ("application/json", pika.URLParameters(URL).credentials.username)

            # Unconsumed, a request is gone from the queue once its time-out has passed.
            with pytest.raises(KvTimeoutError):
                await kv._call(queue.name, {"namespace": ns}, timeout=0.3)
            for _ in range(50):
                if (await channel.declare_queue(queue.name, passive=True)).declaration_result.message_count == 0:
                    break
                await asyncio.sleep(0.1)
            assert (await channel.declare_queue(queue.name, passive=True)).declaration_result.message_count == 0
            await queue.delete(if_unused=False, if_empty=False)
        finally:
            await connection.close()


@run_async
async def test_an_operation_without_a_queue_raises_worker_unavailable_error_at_once(ns):
    async with AsyncKvStoreClient(URL) as kv:
        with pytest.raises(WorkerUnavailableError) as raised:
            await kv._call("kv_no_such_operation", {"namespace": ns})
        assert "there is no queue kv_no_such_operation" in raised.value.message
        assert (await kv.increment(ns, "c"))["value"] == 1


@run_async
async def test_an_unreachable_broker_raises_kv_connection_error_naming_it(ns):
    kv = AsyncKvStoreClient(CLOSED_PORT_URL)
    with pytest.raises(KvConnectionError) as raised:
        await kv.get(ns, "k")
    assert "cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:1/" in raised.value.message
    assert "Connect call failed" in raised.value.message
    with pytest.raises(KvConnectionError):
        async with AsyncKvStoreClient(CLOSED_PORT_URL):
            pass


@run_async
async def test_refused_credentials_raise_kv_connection_error_with_the_reply_code(ns):
    parameters = pika.URLParameters(URL)
    kv = AsyncKvStoreClient(f"amqp://{parameters.credentials.username}:wrong-password@{parameters.host}:{parameters.port}/")
    with pytest.raises(KvConnectionError) as raised:
        await kv.get(ns, "k")
    assert raised.value.reply_code == 403
    assert "wrong-password" not in raised.value.message


@run_async
async def test_a_user_id_the_broker_refuses_fails_that_call_only(ns):
    async with AsyncKvStoreClient(URL) as kv:
        kv.user_id = "someone-else"
        with pytest.raises(KvConnectionError) as raised:
            await kv.get(ns, "k")
        assert raised.value.reply_code == 406 and "user_id" in raised.value.message
        kv.user_id = pika.URLParameters(URL).credentials.username
        assert (await kv.get(ns, "k"))["found"] is False


@run_async
async def test_a_connection_the_broker_closed_is_opened_again(ns):
    name = f"kvworker-test {uuid.uuid4()}"
    async with AsyncKvStoreClient(URL, connection_name=name) as kv:
        assert (await kv.increment(ns, "c"))["value"] == 1
        await asyncio.to_thread(close_connection_named, name)
        assert (await kv.increment(ns, "c"))["value"] == 2


@pytest.mark.parametrize("broker", ["refusing", "silent"])
@run_async
async def test_a_call_that_cannot_reconnect_after_sending_raises_with_its_message_id(ns, broker):
    # Connecting again after the request went out fails: refused, or no answer within the call's time.
    with StallingRelay(URL) as relay:
        relay.stall()
        async with AsyncKvStoreClient(URL, timeout=2.0) as kv:
            sent = lose_connection_after_publishing(kv, CLOSED_PORT_URL if broker == "refusing" else relay.url)
            with pytest.raises(KvConnectionError) as raised:
                await kv.increment(ns, "c")
    assert sent and raised.value.message_id == sent[0]
    assert f"retry with message_id {sent[0]}" in raised.value.message
    # The request was applied; a retry with its message_id gets that answer and is not applied again.
    async with AsyncKvStoreClient(URL) as kv:
        assert (await kv.increment(ns, "c", message_id=raised.value.message_id))["value"] == 1
        assert (await kv.get(ns, "c"))["value"] == 1


@run_async
async def test_a_channel_closed_between_opening_and_publishing_is_opened_again(ns):
    # A close callback may clear the client's channel after _open() returned and before the publish
    # (a call resumes a loop step after the opening it waited for finished).
    kv = AsyncKvStoreClient(URL)
    open_channel, closed = kv._open, []

    async def open_then_lose_the_channel(*args):
        opened = await open_channel(*args)
        if not closed:
            closed.append(kv._channel)
            await kv._channel.close()
        return opened

    kv._open = open_then_lose_the_channel
    try:
        assert (await kv.increment(ns, "c"))["value"] == 1
        assert closed and kv._channel is not closed[0]
    finally:
        await kv.close()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 86400.5, "5"])
@run_async
async def test_a_timeout_that_is_not_seconds_above_zero_up_to_a_day_is_refused_before_sending(ns, timeout):
    with pytest.raises(ValueError, match="timeout must be"):
        AsyncKvStoreClient(URL, timeout=timeout)
    async with AsyncKvStoreClient(URL) as kv:
        with pytest.raises(ValueError, match="timeout must be"):
            await kv.increment(ns, "c", timeout=timeout)
        assert await kv.get(ns, "c") == {"namespace": ns, "key": "c", "found": False}


@pytest.mark.parametrize("when", ["before publishing", "while publishing"])
@run_async
async def test_close_fails_a_call_being_published_with_its_message_id_and_does_not_connect_again(ns, when):
    # An agent runtime closing its client as it shuts down, a call's publish started or about to start.
    async with AsyncKvStoreClient(URL, timeout=5.0) as kv:
        queue = f"py-unanswered-{uuid.uuid4().hex}"
        await (await kv._channel.declare_queue(queue, auto_delete=False)).purge()
        exchange = kv._channel.default_exchange
        publish, publishing, closed = exchange.publish, asyncio.Event(), asyncio.Event()

        async def publish_as_the_client_closes(message, routing_key, **options):
            publishing.set()
            if when == "before publishing":
                await closed.wait()
            return await publish(message, routing_key, **options)

        exchange.publish = publish_as_the_client_closes
        call = asyncio.create_task(kv._call(queue, {"namespace": ns}, message_id="retry-me"))
        await publishing.wait()
        started = asyncio.get_running_loop().time()
        await kv.close()
        closed.set()
        with pytest.raises(KvConnectionError) as raised:
            await call
        assert raised.value.message_id == "retry-me" and "the client was closed" in raised.value.message
        assert asyncio.get_running_loop().time() - started < 2
        assert kv._connection is None
    connection = await aio_pika.connect(URL)
    try:
        await (await connection.channel()).queue_delete(queue)
    finally:
        await connection.close()


@pytest.mark.parametrize("when", ["while connecting", "as the calls start", "after 10 ms"])
@run_async
async def test_close_ends_every_call_in_flight_at_once_with_kv_connection_error_and_connects_no_more(ns, when, monkeypatch):
    # An agent runtime shutting down with 300 calls under way, on a queue nobody answers: calls waiting for the
    # connection, starting (channel taken, not yet registered for a reply), publishing or awaiting a reply.
    admin = await aio_pika.connect(URL)
    try:
        queue = await (await admin.channel()).declare_queue(f"py-unanswered-{uuid.uuid4().hex}", auto_delete=False)
        kv = AsyncKvStoreClient(URL, timeout=5.0)
        if when != "while connecting":
            await kv.connect()
        connect, connecting, closing, connections, connected_after_close = aio_pika.connect, asyncio.Event(), [], [], []

        async def connect_and_keep_count(*args, **kwargs):
            if closing:
                connected_after_close.append(True)
            connecting.set()
            connections.append(await connect(*args, **kwargs))
            return connections[-1]

        monkeypatch.setattr(aio_pika, "connect", connect_and_keep_count)
        calls = [asyncio.create_task(kv._call(queue.name, {"namespace": ns}, message_id=f"call-{i}")) for i in range(300)]
        if when == "while connecting":
            await connecting.wait()
        else:
            await asyncio.sleep(0 if when == "as the calls start" else 0.01)
        closing.append(True)
        started = asyncio.get_running_loop().time()
        await kv.close()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert asyncio.get_running_loop().time() - started < 2

        assert [type(outcome) for outcome in outcomes] == [KvConnectionError] * 300
        assert all("the client was closed" in error.message for error in outcomes)
        # A call whose request may have gone out says so, with its message_id; the others were not sent.
        may_have_been_sent = {error.message_id for error in outcomes if error.message_id is not None}
        for i, error in enumerate(outcomes):
            if error.message_id is not None:
                assert error.message_id == f"call-{i}"
                assert f"may or may not have been applied: retry with message_id call-{i}" in error.message
        if when == "while connecting":
            assert not may_have_been_sent
        received = set()
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            received.add(message.message_id)
        assert received <= may_have_been_sent
        # Nothing was connected after close(), and nothing the client connected is left open.
        assert not connected_after_close and kv._connection is None
        assert all(connection.is_closed for connection in connections)
        await queue.delete(if_unused=False, if_empty=False)
        # A call made after close() connects again.
        monkeypatch.undo()
        assert (await kv.get(ns, "k"))["found"] is False
        await kv.close()
    finally:
        await admin.close()


@run_async
async def test_a_channel_the_broker_closes_over_one_request_ends_the_calls_on_it_as_maybe_applied_and_a_new_one_serves(ns):
    # RabbitMQ refuses one request (a user_id that is not the connection's user) by closing the channel, while
    # three others wait for their replies: those were sent and may have been applied.
    async with AsyncKvStoreClient(URL, timeout=5.0) as kv:
        admin = await aio_pika.connect(URL)
        try:
            admin_channel = await admin.channel()
            queue = await admin_channel.declare_queue(f"py-unanswered-{uuid.uuid4().hex}", auto_delete=False)
            waiting = [asyncio.create_task(kv._call(queue.name, {"namespace": ns}, message_id=f"waiting-{i}"))
                       for i in range(3)]
            for _ in range(100):
                if (await admin_channel.declare_queue(queue.name, passive=True)).declaration_result.message_count == 3:
                    break
                await asyncio.sleep(0.05)
            kv.user_id = "someone-else"
            with pytest.raises(KvConnectionError) as refused:
                await kv._call(queue.name, {"namespace": ns}, message_id="refused")
            kv.user_id = pika.URLParameters(URL).credentials.username
            assert refused.value.reply_code == 406 and "user_id" in refused.value.message

            started = asyncio.get_running_loop().time()
            for i, call in enumerate(waiting):
                with pytest.raises(KvConnectionError) as raised:
                    await call
                assert raised.value.message_id == f"waiting-{i}" and raised.value.reply_code == 406
                assert "RabbitMQ closed the channel" in raised.value.message
                assert f"may or may not have been applied: retry with message_id waiting-{i}" in raised.value.message
            assert asyncio.get_running_loop().time() - started < 2
            # The connection stays; a new channel serves the next calls.
            assert (await kv.increment(ns, "c"))["value"] == 1
            await queue.delete(if_unused=False, if_empty=False)
        finally:
            await admin.close()


@run_async
async def test_a_publish_the_broker_never_confirms_times_out_as_rabbitmq_not_answering_with_its_message_id(ns):
    # As when a memory or disk alarm blocks publishers: RabbitMQ stops reading, no confirm comes. The blocking
    # client reports this the same way (_protocol.broker_silent): not "no reply", which would blame the worker.
    message_id = str(uuid.uuid4())
    with StallingRelay(URL) as relay:
        async with AsyncKvStoreClient(relay.url) as kv:
            relay.stall()
            started = asyncio.get_running_loop().time()
            with pytest.raises(KvTimeoutError) as raised:
                await kv.increment(ns, "c", message_id=message_id, timeout=1.0)
            assert asyncio.get_running_loop().time() - started < 2.5
            assert raised.value.message_id == message_id and "RabbitMQ did not answer within 1.0 s" in raised.value.message
            assert "may or may not have been applied" in raised.value.message
            relay.resume()
            # The retry is applied at most once (the stalled request, delivered late, is past its deadline).
            assert (await kv.increment(ns, "c", message_id=message_id))["value"] == 1
            assert (await kv.get(ns, "c"))["value"] == 1


@pytest.mark.parametrize("body, problem", [(b"hello", "is not JSON"), (b"\xff", "is not JSON"),
                                           (b'"a string"', "is not a JSON object")])
@run_async
async def test_a_reply_no_worker_sends_raises_kv_invalid_reply_error_naming_the_queue(ns, body, problem):
    async with AsyncKvStoreClient(URL, timeout=5.0) as kv:
        with ImpostorQueue(body) as queue:
            with pytest.raises(KvInvalidReplyError) as raised:
                await kv._call(queue, {"namespace": ns})
    assert isinstance(raised.value, WorkerUnavailableError)
    assert raised.value.queue == queue
    assert problem in raised.value.message and f"another program consuming {queue}" in raised.value.message
