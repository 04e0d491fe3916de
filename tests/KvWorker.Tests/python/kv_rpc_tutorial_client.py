"""A KvWorker client written exactly like RabbitMQ's Python RPC tutorial.

Plain JSON to the default exchange, routing key = the operation's queue,
reply_to an exclusive queue, replies matched by correlation_id. Exits non-zero
on the first reply that does not match the wire contract.
"""
import json
import os
import sys
import uuid

import pika


class KvRpcClient:
    def __init__(self, url):
        parameters = pika.URLParameters(url)
        # The broker checks user_id against the connection's user; the worker's
        # persona policy then maps that identity to the personas it may use.
        self.user_id = parameters.credentials.username
        self.connection = pika.BlockingConnection(parameters)
        self.channel = self.connection.channel()
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True)
        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, operation, request):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key=operation,
            properties=pika.BasicProperties(
                reply_to=self.callback_queue,
                correlation_id=self.corr_id,
                content_type="application/json",
                message_id=str(uuid.uuid4()),
                user_id=self.user_id,
            ),
            body=json.dumps(request),
        )
        self.connection.process_data_events(time_limit=None if self.response is None else 0)
        while self.response is None:
            self.connection.process_data_events(time_limit=1)
        return json.loads(self.response)


def original(reply):
    """The reply as a caller written for the original tool sees it: without the version this store adds."""
    assert isinstance(reply.get("version", 1), int) and reply.get("version", 1) > 0, reply
    return {name: value for name, value in reply.items() if name != "version"}


def expect(condition, what, reply):
    if not condition:
        print(f"FAILED: {what}: {json.dumps(reply)}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}: {json.dumps(reply)}")


def main():
    client = KvRpcClient(os.environ.get("KV_AMQP_URL", "amqp://guest:guest@localhost:5672/%2F"))
    ns = os.environ.get("KV_NAMESPACE", "python-" + uuid.uuid4().hex)
    value = {"persona": "researcher", "notes": ["a", "b"], "score": 0.5, "nul": "x\u0000y"}

    reply = client.call("kv_set", {"namespace": ns, "key": "state", "value": value, "ttl_seconds": 60})
    expect(original(reply) == {"namespace": ns, "key": "state", "value": value, "ttl_seconds": 60}, "kv_set", reply)

    reply = client.call("kv_get", {"namespace": ns, "key": "state"})
    expect(reply["found"] is True and reply["value"] == value and 0 < reply["ttl_seconds"] <= 60, "kv_get", reply)

    reply = client.call("kv_increment", {"namespace": ns, "key": "turns"})
    expect(original(reply) == {"namespace": ns, "key": "turns", "value": 1}, "kv_increment default delta", reply)
    reply = client.call("kv_increment", {"namespace": ns, "key": "turns", "delta": 41})
    expect(reply["value"] == 42, "kv_increment delta 41", reply)

    reply = client.call("kv_delete", {"namespace": ns, "key": "state"})
    expect(reply == {"namespace": ns, "key": "state", "deleted": True}, "kv_delete", reply)
    reply = client.call("kv_get", {"namespace": ns, "key": "state"})
    expect(reply == {"namespace": ns, "key": "state", "found": False}, "kv_get after delete", reply)

    client.call("kv_set", {"namespace": ns, "key": "text", "value": "not a number"})
    reply = client.call("kv_increment", {"namespace": ns, "key": "text"})
    expect(reply.get("error", {}).get("code") == "InvalidValueTypeError", "error reply", reply)

    print("all four operations and the error reply behaved as specified")
    client.connection.close()


if __name__ == "__main__":
    main()
