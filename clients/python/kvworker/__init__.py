"""Clients of KvWorker, the key-value store for agent personas served over RabbitMQ.

``KvStoreClient`` (blocking, pika) and ``AsyncKvStoreClient`` (asyncio, aio-pika) send
the wire contract's JSON requests with RabbitMQ's RPC pattern. Results are the
original tool's dictionaries; error replies raise the exception named by their code.
``kvworker.atlas`` plugs the worker into ATLAS's key-value store tool.

    from kvworker import KvStoreClient

    with KvStoreClient() as kv:   # $KV_RABBITMQ_URL, else amqp://guest:guest@localhost:5672/%2F
        kv.set("researcher", "plan", {"step": 1}, ttl_seconds=3600)
        kv.get("researcher", "plan")  # {'namespace': ..., 'found': True, 'value': {'step': 1}, 'ttl_seconds': 3599.9, ...}
"""
from ._protocol import DEFAULT_TIMEOUT, DEFAULT_URL, OPERATIONS, Operation, new_message_id
from .aio import AsyncKvStoreClient
from .client import KvStoreClient
from .errors import (ERRORS, AccessDeniedError, GlobalQuotaExceededError, InvalidValueTypeError, KeyValueStoreError,
                     KvConnectionError, KvInvalidReplyError, KvTimeoutError, NamespaceQuotaExceededError,
                     StoreUnavailableError, ValueSerializationError, VersionConflictError, WorkerUnavailableError)

__version__ = "1.0.0"

__all__ = [
    "KvStoreClient", "AsyncKvStoreClient", "Operation", "OPERATIONS", "DEFAULT_URL", "DEFAULT_TIMEOUT", "ERRORS",
    "new_message_id",
    "KeyValueStoreError", "NamespaceQuotaExceededError", "GlobalQuotaExceededError", "InvalidValueTypeError",
    "ValueSerializationError", "AccessDeniedError", "StoreUnavailableError", "VersionConflictError",
    "WorkerUnavailableError", "KvTimeoutError", "KvInvalidReplyError", "KvConnectionError",
]
