"""What an agent does with the store: remember a plan, count turns, handle a full namespace.

    /usr/bin/python3 clients/python/example.py [amqp://guest:guest@localhost:5672/%2F]

It works in a namespace of its own and deletes what it wrote before it ends.
"""
import sys
import uuid

from kvworker import InvalidValueTypeError, KvStoreClient, NamespaceQuotaExceededError


def main(url=None, output=print):
    namespace = "example-" + uuid.uuid4().hex[:8]
    with KvStoreClient(url) as kv:  # acts as the broker user's default persona
        try:
            kv.set(namespace, "plan", {"steps": ["search", "summarise"], "done": 0}, ttl_seconds=3600)
            output(f"plan: {kv.get(namespace, 'plan')['value']}")

            for _ in range(3):
                turns = kv.increment(namespace, "turns")["value"]
            output(f"turns: {turns}")

            try:
                kv.increment(namespace, "plan")
            except InvalidValueTypeError as error:
                output(f"cannot count a plan: {error.code}")

            try:
                kv.set(namespace, "notes", "x" * (kv.usage(namespace)["quota_bytes"] + 1))
            except NamespaceQuotaExceededError as error:
                output(f"notes rejected: {error.code}")

            usage = kv.usage(namespace)
            output(f"usage: {usage['used_bytes']} of {usage['quota_bytes']} bytes in {usage['entries']} entries")
        finally:
            for key in ("plan", "turns", "notes"):
                kv.delete(namespace, key)
        output(f"cleaned up: {kv.usage(namespace)['entries']} entries left in {namespace}")
    return namespace


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
