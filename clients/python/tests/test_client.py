"""The blocking client, KvStoreClient, against the worker."""
import importlib.util
import inspect
import threading
import time
import uuid

import pika
import pytest

import kvworker
from conftest import CLOSED_PORT_URL, REPO_ROOT, URL, ImpostorQueue, StallingRelay, close_connection_named
from kvworker import (AccessDeniedError, InvalidValueTypeError, KeyValueStoreError, KvConnectionError, KvStoreClient,
                      KvTimeoutError, NamespaceQuotaExceededError, ValueSerializationError, VersionConflictError,
                      WorkerUnavailableError)

WIRE_CODES = ["KeyValueStoreError", "NamespaceQuotaExceededError", "GlobalQuotaExceededError", "InvalidValueTypeError",
              "ValueSerializationError", "AccessDeniedError", "StoreUnavailableError", "VersionConflictError"]


def test_every_wire_error_code_has_an_exception_of_that_name():
    for code in WIRE_CODES:
        assert kvworker.ERRORS[code].__name__ == code
        assert issubclass(kvworker.ERRORS[code], KeyValueStoreError)
        assert getattr(kvworker, code) is kvworker.ERRORS[code]


def test_a_version_conflict_reply_carries_the_current_version_or_none():
    conflict = kvworker.errors.error_from_reply(
        {"code": "VersionConflictError", "message": "version 3 expected", "current_version": 4})
    assert (type(conflict), conflict.current_version, conflict.message) == (VersionConflictError, 4, "version 3 expected")
    assert kvworker.errors.error_from_reply({"code": "VersionConflictError", "message": "absent"}).current_version is None


def test_client_side_errors_are_key_value_store_errors():
    for cls in (WorkerUnavailableError, KvTimeoutError, KvConnectionError):
        assert issubclass(cls, KeyValueStoreError)
    assert issubclass(KvTimeoutError, WorkerUnavailableError)


def test_both_clients_have_a_method_per_operation_of_the_table():
    for operation in kvworker.OPERATIONS:
        for client in (KvStoreClient, kvworker.AsyncKvStoreClient):
            method = getattr(client, operation.method)
            parameters = inspect.signature(method).parameters
            assert list(parameters)[:len(operation.fields) + 1] == ["self", *operation.fields]
            for option in ("persona", "provider", "message_id", "timeout"):
                assert parameters[option].kind is inspect.Parameter.KEYWORD_ONLY
    assert inspect.iscoroutinefunction(kvworker.AsyncKvStoreClient.get)


def test_set_get_delete_round_trip_any_json(kv, ns):
    value = {"persona": "researcher", "notes": ["a", "ü"], "score": 0.5, "nul": "x\u0000y", "big": 2 ** 70}

    written = kv.set(ns, "k", value, ttl_seconds=60)
    assert {k: written[k] for k in ("namespace", "key", "value", "ttl_seconds")} == \
        {"namespace": ns, "key": "k", "value": value, "ttl_seconds": 60}
    got = kv.get(ns, "k")
    assert got["found"] and got["value"] == value
    assert 0 < got["ttl_seconds"] <= 60
    assert kv.delete(ns, "k") == {"namespace": ns, "key": "k", "deleted": True}
    assert kv.get(ns, "k") == {"namespace": ns, "key": "k", "found": False}
    assert kv.delete(ns, "k")["deleted"] is False


def test_set_without_ttl_is_persistent(kv, ns):
    kv.set(ns, "k", None)
    got = kv.get(ns, "k")
    assert (got["found"], got["value"], "ttl_seconds" in got) == (True, None, False)


def test_increment_defaults_and_options(kv, ns):
    assert kv.increment(ns, "c")["value"] == 1
    assert kv.increment(ns, "c", delta=41)["value"] == 42
    counter = kv.increment(ns, "d", delta=5, initial_value=100, ttl_seconds=30)
    assert (counter["value"], counter["ttl_seconds"]) == (105, 30)


def test_versions_guard_set_and_delete(kv, ns):
    first = kv.set(ns, "k", "a", if_version=0)
    assert first["version"] > 0
    assert kv.get(ns, "k")["version"] == first["version"]
    with pytest.raises(VersionConflictError) as raised:
        kv.set(ns, "k", "b", if_version=0)
    assert raised.value.current_version == first["version"]
    second = kv.set(ns, "k", "b", if_version=first["version"])
    assert second["version"] > first["version"]
    with pytest.raises(VersionConflictError):
        kv.delete(ns, "k", if_version=first["version"])
    assert kv.delete(ns, "k", if_version=second["version"])["deleted"] is True
    with pytest.raises(VersionConflictError) as raised:
        kv.delete(ns, "k", if_version=second["version"])
    assert raised.value.current_version is None


def test_list_pages_through_keys_in_order_with_a_prefix(kv, ns):
    for key in ("task:3", "task:1", "task:2", "note"):
        kv.set(ns, key, key)
    first = kv.list(ns, prefix="task:", limit=2)
    assert [entry["key"] for entry in first["keys"]] == ["task:1", "task:2"]
    rest = kv.list(ns, prefix="task:", limit=2, cursor=first["next_cursor"])
    assert [entry["key"] for entry in rest["keys"]] == ["task:3"] and "next_cursor" not in rest
    assert first["keys"][0]["size_bytes"] == len('"task:1"') and first["keys"][0]["version"] > 0


def test_touch_changes_the_ttl_and_get_many_reads_keys_in_order(kv, ns):
    kv.set(ns, "a", 1)
    kv.set(ns, "b", 2, ttl_seconds=60)
    assert kv.touch(ns, "a", 120)["ttl_seconds"] == 120
    assert "ttl_seconds" not in kv.touch(ns, "b", None)
    entries = kv.get_many(ns, ["b", "missing", "a"])["entries"]
    assert [(entry["key"], entry["found"], entry.get("value")) for entry in entries] == \
        [("b", True, 2), ("missing", False, None), ("a", True, 1)]
    assert 0 < entries[2]["ttl_seconds"] <= 120 and "ttl_seconds" not in entries[0]


def test_usage_counts_bytes_and_entries(kv, ns):
    kv.set(ns, "a", "12345678")  # 10 bytes of compact JSON
    kv.set(ns, "b", [1, 2, 3])   # 7 bytes
    usage = kv.usage(ns)
    assert (usage["used_bytes"], usage["entries"]) == (17, 2)
    assert usage["quota_bytes"] > 0


def test_increment_of_text_raises_invalid_value_type_error(kv, ns):
    kv.set(ns, "text", "not a number")
    with pytest.raises(InvalidValueTypeError) as raised:
        kv.increment(ns, "text")
    assert raised.value.code == "InvalidValueTypeError"
    assert "not an integer" in raised.value.message


def test_a_value_over_the_quota_raises_namespace_quota_exceeded_error_and_changes_nothing(kv, ns):
    quota = kv.usage(ns)["quota_bytes"]
    with pytest.raises(NamespaceQuotaExceededError):
        kv.set(ns, "big", "x" * quota)
    assert kv.get(ns, "big")["found"] is False


def test_an_invalid_request_raises_key_value_store_error(kv, ns):
    with pytest.raises(KeyValueStoreError) as raised:
        kv.set(ns, "k", 1, ttl_seconds=-5)
    assert type(raised.value) is KeyValueStoreError


@pytest.mark.parametrize("ttl", [float("inf"), float("-inf"), float("nan")])
def test_a_ttl_that_is_not_finite_raises_key_value_store_error_as_other_invalid_ttls_do(kv, ns, ttl):
    # JSON cannot carry it, but it is an invalid TTL, not a value that cannot be stored.
    for call in (lambda: kv.set(ns, "k", 1, ttl_seconds=ttl), lambda: kv.increment(ns, "k", ttl_seconds=ttl),
                 lambda: kv.touch(ns, "k", ttl)):
        with pytest.raises(KeyValueStoreError, match="ttl_seconds must be a positive, finite number") as raised:
            call()
        assert type(raised.value) is KeyValueStoreError
    assert kv.get(ns, "k")["found"] is False


def test_a_value_that_is_not_json_raises_value_serialization_error_before_sending(kv, ns):
    for value in (float("nan"), {"when": object()}):
        with pytest.raises(ValueSerializationError):
            kv.set(ns, "k", value)
    assert kv.get(ns, "k")["found"] is False


def test_the_persona_given_to_the_client_or_a_call_is_the_one_the_policy_judges(kv, ns):
    # scripts/python-tests.sh lets the broker user act as "tester" (read and write) or "reader" (read only).
    with KvStoreClient(URL, persona="reader") as reader:
        assert reader.user_id == pika.URLParameters(URL).credentials.username
        assert reader.get(ns, "c")["found"] is False
        with pytest.raises(AccessDeniedError):
            reader.increment(ns, "c")
        assert reader.increment(ns, "c", persona="tester")["value"] == 1
    with pytest.raises(AccessDeniedError):
        kv.get(ns, "c", persona="somebody-else")


def test_a_provider_given_to_the_client_or_a_call_picks_the_worker_adapter(ns):
    with KvStoreClient(URL, provider="redis") as on_redis:
        on_redis.set(ns, "k", "in redis")
        assert on_redis.get(ns, "k")["value"] == "in redis"
        assert on_redis.get(ns, "k", provider="postgres")["found"] is False
        with pytest.raises(KeyValueStoreError, match="nosuch"):
            on_redis.get(ns, "k", provider="nosuch")


def test_a_retry_with_the_same_message_id_gets_the_first_answer_and_is_not_applied_twice(kv, ns):
    message_id = str(uuid.uuid4())
    first = kv.increment(ns, "c", delta=5, message_id=message_id)
    assert kv.increment(ns, "c", delta=5, message_id=message_id) == first
    assert kv.increment(ns, "c")["value"] == 6


def test_the_broker_rejects_a_user_id_that_is_not_the_connections_user_and_the_client_recovers(ns):
    # Proof that user_id really is sent: RabbitMQ validates it and closes the channel.
    with KvStoreClient(URL) as kv:
        kv.user_id = "someone-else"
        with pytest.raises(KvConnectionError) as raised:
            kv.get(ns, "k")
        assert raised.value.reply_code == 406
        assert "user_id" in raised.value.message
        kv.user_id = pika.URLParameters(URL).credentials.username
        assert kv.get(ns, "k")["found"] is False


# What KvWorker.Client refuses too: no time at all, no number, or more than a day (KvCallOptions.MaxTimeout).
BAD_TIMEOUTS = [0, -1, float("nan"), float("inf"), 86400.5, "5"]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
def test_a_timeout_that_is_not_seconds_above_zero_up_to_a_day_is_refused_before_sending(kv, ns, timeout):
    with pytest.raises(ValueError, match="timeout must be"):
        kv.increment(ns, "c", timeout=timeout)
    with pytest.raises(ValueError, match="timeout must be"):
        KvStoreClient(URL, timeout=timeout)
    assert kv.get(ns, "c") == {"namespace": ns, "key": "c", "found": False}


def test_a_request_nobody_answers_raises_kv_timeout_error_with_its_message_id(kv, ns):
    with unanswered_queue() as queue:
        with pytest.raises(KvTimeoutError) as raised:
            kv._call(queue, {"namespace": ns}, timeout=0.5, message_id="retry-me")
    assert isinstance(raised.value, WorkerUnavailableError)
    assert raised.value.message_id == "retry-me"
    assert "no reply" in raised.value.message and "may or may not have been applied" in raised.value.message


@pytest.mark.parametrize("body, problem", [(b"hello", "is not JSON"), (b"\xff", "is not JSON"),
                                           (b'"a string"', "is not a JSON object")])
def test_a_reply_no_worker_sends_raises_kv_invalid_reply_error_naming_the_queue(kv, ns, body, problem):
    with ImpostorQueue(body) as queue:
        with pytest.raises(kvworker.KvInvalidReplyError) as raised:
            kv._call(queue, {"namespace": ns}, timeout=5.0)
    assert isinstance(raised.value, WorkerUnavailableError)
    assert raised.value.queue == queue
    assert problem in raised.value.message and f"another program consuming {queue}" in raised.value.message


def test_a_request_expires_in_its_queue_when_its_caller_gives_up(kv, ns):
    with unanswered_queue() as queue, pika.BlockingConnection(pika.URLParameters(URL)) as connection:
        channel = connection.channel()
        outcome = []

        def call():
            try:
                kv._call(queue, {"namespace": ns}, timeout=2.0)
            except Exception as error:
                outcome.append(error)
        caller = threading.Thread(target=call)
        caller.start()
        message = None
        for _ in range(40):
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                message = properties
                break
            time.sleep(0.05)
        caller.join()
        assert len(outcome) == 1 and isinstance(outcome[0], KvTimeoutError)
        assert message is not None and 1000 <= int(message.expiration) <= 2000
        # The worker drops a request taken after this moment, however long it queued.
        sent = message.timestamp
        deadline_ms = message.headers["kv-deadline"]
        assert abs(sent * 1000 + int(message.expiration) - deadline_ms) <= 1500
        assert message.content_type == "application/json" and message.user_id
        assert uuid.UUID(message.message_id).version == 7  # time-ordered: see test_message_ids_are_fresh_and_time_ordered

        # Unconsumed, a request is gone from the queue once its time-out has passed.
        with pytest.raises(KvTimeoutError):
            kv._call(queue, {"namespace": ns}, timeout=0.3)
        deadline = time.monotonic() + 5
        while channel.queue_declare(queue, passive=True).method.message_count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert channel.queue_declare(queue, passive=True).method.message_count == 0


def test_an_operation_without_a_queue_raises_worker_unavailable_error_at_once(kv, ns):
    with pytest.raises(WorkerUnavailableError) as raised:
        kv._call("kv_no_such_operation", {"namespace": ns})
    assert "there is no queue kv_no_such_operation" in raised.value.message


def test_an_unreachable_broker_raises_kv_connection_error_naming_it():
    with pytest.raises(KvConnectionError) as raised:
        KvStoreClient(CLOSED_PORT_URL)
    assert "cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:1/" in raised.value.message
    assert "Connection refused" in raised.value.message
    assert raised.value.reply_code is None


def test_refused_credentials_raise_kv_connection_error_with_the_reply_code():
    parameters = pika.URLParameters(URL)
    with pytest.raises(KvConnectionError) as raised:
        KvStoreClient(f"amqp://{parameters.credentials.username}:wrong-password@{parameters.host}:{parameters.port}/")
    assert raised.value.reply_code == 403
    assert "wrong-password" not in raised.value.message


def test_a_connection_the_broker_closed_is_opened_again(ns):
    name = f"kvworker-test {uuid.uuid4()}"
    with KvStoreClient(URL, connection_name=name) as kv:
        assert kv.increment(ns, "c")["value"] == 1
        close_connection_named(name)
        assert kv.increment(ns, "c")["value"] == 2


@pytest.mark.parametrize("broker", ["refusing", "silent"])
def test_a_call_that_cannot_reconnect_after_sending_raises_with_its_message_id(ns, broker):
    # Connecting again after the request went out fails: refused, or no answer within the call's time.
    with StallingRelay(URL) as relay, KvStoreClient(URL, timeout=2.0) as kv:
        relay.stall()
        sent = lose_connection_after_publishing(kv, CLOSED_PORT_URL if broker == "refusing" else relay.url)
        with pytest.raises(KvConnectionError) as raised:
            kv.increment(ns, "c")
    assert sent and raised.value.message_id == sent[0]
    assert "cannot connect to RabbitMQ" in raised.value.message
    assert f"retry with message_id {sent[0]}" in raised.value.message
    # The request was applied; a retry with its message_id gets that answer and is not applied again.
    with KvStoreClient(URL) as kv:
        assert kv.increment(ns, "c", message_id=raised.value.message_id)["value"] == 1
        assert kv.get(ns, "c")["value"] == 1


def test_a_publish_the_broker_never_confirms_times_out_with_its_message_id(ns):
    # As when a memory or disk alarm blocks publishers: RabbitMQ stops reading, no confirm comes.
    message_id, outcome = str(uuid.uuid4()), []
    with StallingRelay(URL) as relay, KvStoreClient(relay.url) as kv:
        def call():
            started = time.monotonic()
            try:
                kv.increment(ns, "c", message_id=message_id, timeout=1.0)
            except KeyValueStoreError as error:
                outcome.append((error, time.monotonic() - started))
        relay.stall()
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(timeout=10)
        relay.resume()  # lets a call that did not give up go on
        caller.join(timeout=10)
        assert outcome, "the call did not give up at its time-out"
        error, took = outcome[0]
        assert isinstance(error, KvTimeoutError) and error.message_id == message_id and took < 2.5
        assert "may or may not have been applied" in error.message
        # The client connects again; the retry is applied at most once.
        assert kv.increment(ns, "c", message_id=message_id)["value"] == 1
        assert kv.get(ns, "c")["value"] == 1


def test_connecting_takes_no_longer_than_the_time_left(ns):
    # pika's own limits are 10 s for the socket and 15 s for the handshake.
    with StallingRelay(URL) as relay:
        relay.stall()
        started = time.monotonic()
        with pytest.raises(KvConnectionError) as raised:
            KvStoreClient(relay.url, timeout=1.0)
        assert time.monotonic() - started < 2.5 and "cannot connect to RabbitMQ" in raised.value.message
        relay.resume()
        with KvStoreClient(relay.url) as kv:
            kv.close()  # the next call connects again
            relay.stall()
            started = time.monotonic()
            with pytest.raises(KvConnectionError) as raised:
                kv.get(ns, "k", timeout=1.0)
            assert time.monotonic() - started < 2.5 and raised.value.message_id is None  # nothing was sent


def test_the_example_runs_and_leaves_nothing_behind(kv):
    spec = importlib.util.spec_from_file_location("kv_example", REPO_ROOT / "clients/python/example.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    output = []
    namespace = example.main(URL, output=output.append)
    text = "\n".join(output)
    assert "turns: 3" in text
    assert "cannot count a plan: InvalidValueTypeError" in text
    assert "notes rejected: NamespaceQuotaExceededError" in text
    assert kv.usage(namespace)["entries"] == 0


def lose_connection_after_publishing(client, reconnect_url):
    """Has a KvStoreClient lose its connection right after its next publish, and connect again to
    ``reconnect_url``. Returns the list the message_id of that publish is added to."""
    sent = []
    publish = client._channel.basic_publish

    def publish_then_lose_the_connection(exchange, routing_key, body, properties, mandatory):
        publish(exchange, routing_key, body, properties, mandatory=mandatory)
        sent.append(properties.message_id)
        client.url, client._parameters = reconnect_url, pika.URLParameters(reconnect_url)
        client._connection.close()
        raise pika.exceptions.StreamLostError("the connection was lost after publishing")

    client._channel.basic_publish = publish_then_lose_the_connection
    return sent


class unanswered_queue:
    """A queue of the test's own that no worker consumes."""

    def __enter__(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(URL))
        self.name = f"py-unanswered-{uuid.uuid4().hex}"
        self.connection.channel().queue_declare(self.name)
        return self.name

    def __exit__(self, *_):
        self.connection.channel().queue_delete(self.name)
        self.connection.close()


def test_message_ids_are_fresh_and_time_ordered():
    # UUIDv7: the worker keeps recent requests' identities in an index they then grow at one end of.
    # Public, for callers who keep a request's id to retry it with.
    first = kvworker.new_message_id()
    time.sleep(0.002)
    second = kvworker.new_message_id()

    assert uuid.UUID(first).version == 7 and uuid.UUID(first).variant == uuid.RFC_4122
    assert first < second
    assert abs(int(first.replace("-", "")[:12], 16) - time.time() * 1000) < 5000
