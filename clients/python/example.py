"""What an agent does with the store: remember a plan, count turns, handle a full namespace.

    /usr/bin/python3 clients/python/example.py [amqp://guest:guest@localhost:5672/%2F]
"""
import sys
import uuid

from kvstore_client import InvalidValueTypeError, KvStoreClient, NamespaceQuotaExceededError


def main(url=None):
    namespace = "example-" + uuid.uuid4().hex[:8]
    with KvStoreClient(url) as kv:  # acts as the broker user's default persona
        kv.set(namespace, "plan", {"steps": ["search", "summarise"], "done": 0}, ttl_seconds=3600)
        print("plan:", kv.get(namespace, "plan")["value"])

        for _ in range(3):
            turns = kv.increment(namespace, "turns")["value"]
        print("turns:", turns)

        try:
            kv.increment(namespace, "plan")
        except InvalidValueTypeError as error:
            print("cannot count a plan:", error.code)

        try:
            kv.set(namespace, "notes", "x" * (kv.usage(namespace)["quota_bytes"] + 1))
        except NamespaceQuotaExceededError as error:
            print("notes rejected:", error.code)

        usage = kv.usage(namespace)
        print(f"usage: {usage['used_bytes']} of {usage['quota_bytes']} bytes in {usage['entries']} entries")
        print("deleted:", kv.delete(namespace, "plan")["deleted"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
