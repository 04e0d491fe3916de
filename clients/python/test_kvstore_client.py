"""Tests of kvstore_client against a running worker named by $KV_RABBITMQ_URL.

    KV_RABBITMQ_URL=amqp://guest:guest@localhost:5672/%2F /usr/bin/python3 -m unittest discover -s clients/python

scripts/test.sh starts a worker for them on a fresh virtual host, whose broker
user may act as the personas "tester" (read and write, its default) and "reader".
"""
import contextlib
import io
import os
import unittest
import uuid

import pika

import example
import kvstore_client
from kvstore_client import (AccessDeniedError, InvalidValueTypeError, KeyValueStoreError, KvStoreClient,
                            NamespaceQuotaExceededError, WorkerUnavailableError)

# Without a worker these tests fail (they never skip): scripts/test.sh provides one.
URL = os.environ.get("KV_RABBITMQ_URL") or kvstore_client.DEFAULT_URL


def new_namespace():
    return "py-" + uuid.uuid4().hex


class ExceptionNamesTest(unittest.TestCase):
    def test_every_wire_error_code_has_an_exception_of_that_name(self):
        codes = ["KeyValueStoreError", "NamespaceQuotaExceededError", "GlobalQuotaExceededError", "InvalidValueTypeError",
                 "ValueSerializationError", "AccessDeniedError", "StoreUnavailableError"]
        for code in codes:
            self.assertEqual(code, kvstore_client.ERRORS[code].__name__)
            self.assertTrue(issubclass(kvstore_client.ERRORS[code], KeyValueStoreError))


class KvStoreClientTest(unittest.TestCase):
    def setUp(self):
        self.kv = KvStoreClient(URL)
        self.addCleanup(self.kv.close)
        self.ns = new_namespace()

    def test_set_get_delete_round_trip_any_json(self):
        value = {"persona": "researcher", "notes": ["a", "ü"], "score": 0.5, "nul": "x\u0000y", "big": 2 ** 70}

        self.assertEqual({"namespace": self.ns, "key": "k", "value": value, "ttl_seconds": 60},
                         self.kv.set(self.ns, "k", value, ttl_seconds=60))
        got = self.kv.get(self.ns, "k")
        self.assertTrue(got["found"])
        self.assertEqual(value, got["value"])
        self.assertTrue(0 < got["ttl_seconds"] <= 60)
        self.assertEqual({"namespace": self.ns, "key": "k", "deleted": True}, self.kv.delete(self.ns, "k"))
        self.assertEqual({"namespace": self.ns, "key": "k", "found": False}, self.kv.get(self.ns, "k"))
        self.assertFalse(self.kv.delete(self.ns, "k")["deleted"])

    def test_set_without_ttl_is_persistent(self):
        self.kv.set(self.ns, "k", None)
        self.assertEqual({"namespace": self.ns, "key": "k", "found": True, "value": None}, self.kv.get(self.ns, "k"))

    def test_increment_defaults_and_options(self):
        self.assertEqual(1, self.kv.increment(self.ns, "c")["value"])
        self.assertEqual(42, self.kv.increment(self.ns, "c", delta=41)["value"])
        counter = self.kv.increment(self.ns, "d", delta=5, initial_value=100, ttl_seconds=30)
        self.assertEqual(105, counter["value"])
        self.assertEqual(30, counter["ttl_seconds"])

    def test_usage_counts_bytes_and_entries(self):
        self.kv.set(self.ns, "a", "12345678")  # 10 bytes of compact JSON
        self.kv.set(self.ns, "b", [1, 2, 3])   # 7 bytes
        usage = self.kv.usage(self.ns)
        self.assertEqual((17, 2), (usage["used_bytes"], usage["entries"]))
        self.assertGreater(usage["quota_bytes"], 0)

    def test_increment_of_text_raises_invalid_value_type_error(self):
        self.kv.set(self.ns, "text", "not a number")
        with self.assertRaises(InvalidValueTypeError) as raised:
            self.kv.increment(self.ns, "text")
        self.assertEqual("InvalidValueTypeError", raised.exception.code)
        self.assertIn("not an integer", raised.exception.message)

    def test_a_value_over_the_quota_raises_namespace_quota_exceeded_error_and_changes_nothing(self):
        quota = self.kv.usage(self.ns)["quota_bytes"]
        with self.assertRaises(NamespaceQuotaExceededError):
            self.kv.set(self.ns, "big", "x" * quota)
        self.assertFalse(self.kv.get(self.ns, "big")["found"])

    def test_an_invalid_request_raises_key_value_store_error(self):
        with self.assertRaises(KeyValueStoreError) as raised:
            self.kv.set(self.ns, "k", 1, ttl_seconds=-5)
        self.assertIs(KeyValueStoreError, type(raised.exception))

    def test_the_persona_given_to_the_client_or_a_call_is_the_one_the_policy_judges(self):
        # scripts/python-tests.sh lets the broker user act as "tester" (read and write) or "reader" (read only).
        kv = KvStoreClient(URL, persona="reader")
        self.addCleanup(kv.close)
        self.assertEqual(pika.URLParameters(URL).credentials.username, kv.user_id)
        self.assertFalse(kv.get(self.ns, "c")["found"])
        with self.assertRaises(AccessDeniedError):
            kv.increment(self.ns, "c")
        self.assertEqual(1, kv.increment(self.ns, "c", persona="tester")["value"])
        with self.assertRaises(AccessDeniedError):
            self.kv.get(self.ns, "c", persona="somebody-else")

    def test_the_broker_rejects_a_user_id_that_is_not_the_connections_user(self):
        # Proof that user_id really is sent: RabbitMQ validates it and closes the channel.
        kv = KvStoreClient(URL)
        self.addCleanup(kv.close)
        kv.user_id = "someone-else"
        with self.assertRaises(pika.exceptions.ChannelClosedByBroker) as raised:
            kv.get(self.ns, "k")
        self.assertEqual(406, raised.exception.reply_code)

    def test_a_request_nobody_answers_raises_worker_unavailable_error(self):
        kv = KvStoreClient(URL, timeout=0.5)
        self.addCleanup(kv.close)
        unanswered = kv._channel.queue_declare("", exclusive=True).method.queue
        with self.assertRaises(WorkerUnavailableError) as raised:
            kv._call(unanswered, {"namespace": self.ns}, None)
        self.assertIn("no reply", raised.exception.message)

    def test_an_operation_without_a_queue_raises_worker_unavailable_error_at_once(self):
        with self.assertRaises(WorkerUnavailableError) as raised:
            self.kv._call("kv_no_such_operation", {"namespace": self.ns}, None)
        self.assertIn("there is no queue kv_no_such_operation", raised.exception.message)

    def test_the_example_runs(self):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            example.main(URL)
        text = output.getvalue()
        self.assertIn("turns: 3", text)
        self.assertIn("cannot count a plan: InvalidValueTypeError", text)
        self.assertIn("notes rejected: NamespaceQuotaExceededError", text)
        self.assertIn("deleted: True", text)


if __name__ == "__main__":
    unittest.main()
