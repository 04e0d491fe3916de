"""The ATLAS adapter: ATLAS's key-value store tool backed by this worker.

In ATLAS (its root on sys.path), once at start-up:

    import kvworker.atlas
    kvworker.atlas.register()

and ``default_adapter: kvworker`` under ``tools.kv_store`` in config.yaml (or
``adapter_name="kvworker"`` on a call). ATLAS's ``KeyValueStoreService`` and its
``kv_get``, ``kv_set``, ``kv_delete`` and ``kv_increment`` then work unchanged: the
adapter returns ATLAS's own result objects and raises ATLAS's own exception classes.

Settings (``tools.kv_store.adapters.kvworker`` in config.yaml, or ``adapter_config``):
``url`` (AMQP, default $KV_RABBITMQ_URL, else the local broker as guest), ``timeout``
(seconds per call, default $KV_TIMEOUT_SECONDS, else 30), ``persona`` (default
$KV_PERSONA, else the broker user's default persona) and ``provider`` (the worker's
adapter; default the worker's own default).

ATLAS calls adapters from worker threads and builds one per call; adapters are
shared per settings and process, and each holds one connection (an
AsyncKvStoreClient on an event loop of its own thread) that any thread can use.
"""
import asyncio
import atexit
import functools
import importlib
import os
import threading
import time
from collections.abc import Mapping
from types import MappingProxyType

from ._protocol import DEFAULT_TIMEOUT, MAX_TIMEOUT, checked_timeout
from .aio import AsyncKvStoreClient
from .errors import InvalidValueTypeError, KeyValueStoreError

ADAPTER_NAME = "kvworker"
ATLAS_MODULE = "modules.Tools.Base_Tools.kv_store"
_RESULT_CLASSES = ("_StoreRecord", "_GetResult", "_WriteResult", "_DeleteResult")


def register(name=ADAPTER_NAME):
    """Registers the adapter in ATLAS's registry (``register_kv_store_adapter``) under ``name``.

    Raises ImportError naming what is missing when ATLAS's module cannot be imported.
    """
    try:
        kv_store = importlib.import_module(ATLAS_MODULE)
    except ImportError as error:
        raise ImportError(
            f"kvworker.atlas.register() needs ATLAS's module {ATLAS_MODULE}, which cannot be imported ({error}). "
            "Call it inside ATLAS, with ATLAS's root directory on sys.path.", name=ATLAS_MODULE) from error
    if not callable(getattr(kv_store, "register_kv_store_adapter", None)):
        raise ImportError(f"{ATLAS_MODULE} ({kv_store.__file__}) has no register_kv_store_adapter: is it ATLAS's?",
                          name=ATLAS_MODULE)
    kv_store.register_kv_store_adapter(name, functools.partial(create_adapter, name=name))
    return name


def settings_from(config):
    """The adapter's settings from ATLAS's config mapping, with the environment's fallbacks."""
    config = config or {}
    timeout = config.get("timeout")
    if timeout in (None, ""):
        timeout = os.environ.get("KV_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT
    try:
        timeout = checked_timeout(float(timeout))
    except (TypeError, ValueError):
        raise _to_atlas(KeyValueStoreError(f"kvworker adapter: timeout must be a positive number of seconds, at most "
                                           f"{MAX_TIMEOUT:.0f} (a day), not {config.get('timeout')!r}")) from None
    return {
        "url": config.get("url") or None,  # AsyncKvStoreClient falls back to $KV_RABBITMQ_URL
        "timeout": timeout,
        "persona": config.get("persona") or os.environ.get("KV_PERSONA") or None,
        "provider": config.get("provider") or None,
    }


def _own_config(config_manager, config, name):
    """The adapter's config mapping, without the settings of another adapter that ATLAS put in it.

    ATLAS's build_kv_store_service starts the mapping of whichever adapter a call names with the section
    of ``tools.kv_store.default_adapter``: for ``adapter_name="kvworker"`` where postgres is the default,
    it holds postgres's ``url``, a database DSN. The settings are then this adapter's own section,
    ``tools.kv_store.adapters.<name>`` read from ``config_manager`` as ATLAS reads it, under what the call's
    ``adapter_config`` set: the keys of the mapping whose values differ from the default adapter's section.
    """
    config = dict(config or {})
    if config_manager is None:
        return config
    tools = config_manager.get_config("tools", {})
    kv_config = tools.get("kv_store") if isinstance(tools, Mapping) else None
    if not isinstance(kv_config, Mapping):
        return config
    default_name = kv_config.get("default_adapter")
    default_name = default_name.strip() if isinstance(default_name, str) and default_name.strip() else "postgres"
    own_name = name.strip().lower()  # ATLAS's registry takes adapter names in any case
    if default_name.lower() == own_name:
        return config  # ATLAS started the mapping with this adapter's own section
    adapters = kv_config.get("adapters")
    adapters = adapters if isinstance(adapters, Mapping) else {}
    default_section = adapters.get(default_name)
    default_section = default_section if isinstance(default_section, Mapping) else {}
    own_section = next((section for key, section in adapters.items()
                        if isinstance(key, str) and key.strip().lower() == own_name
                        and isinstance(section, Mapping)), {})
    from_call = {key: value for key, value in config.items()
                 if key not in default_section or default_section[key] != value}
    return {**own_section, **from_call}


_adapters = {}
_adapters_lock = threading.Lock()


def create_adapter(config_manager=None, config=None, *, name=ADAPTER_NAME):
    """The factory ATLAS calls (``factory(config_manager, config_mapping)``): the shared adapter for these settings.

    ``name`` is the one the adapter is registered under, which names its section of ``tools.kv_store.adapters``.
    """
    settings = settings_from(_own_config(config_manager, config, name))
    key = (os.getpid(), tuple(sorted(settings.items())))
    with _adapters_lock:
        adapter = _adapters.get(key)
        if adapter is None:
            adapter = _adapters[key] = KvWorkerAdapter(**settings)
    return adapter


@atexit.register
def _close_adapters():
    with _adapters_lock:
        adapters = [adapter for (pid, _), adapter in _adapters.items() if pid == os.getpid()]
        _adapters.clear()
    for adapter in adapters:
        adapter.close()


class KvWorkerAdapter:
    """ATLAS's adapter interface (get, set, delete, increment) over one connection to the worker; thread-safe."""

    def __init__(self, url=None, *, timeout=DEFAULT_TIMEOUT, persona=None, provider=None):
        self.client = AsyncKvStoreClient(url, timeout=timeout, persona=persona, provider=provider,
                                         connection_name=f"kvworker-atlas pid {os.getpid()}")
        self._loop = None
        self._thread = None
        self._guard = threading.Lock()

    def get(self, namespace, key):
        return _get_result(self._run(self.client.get, namespace, key))

    def set(self, namespace, key, value, *, ttl_seconds=None):
        return _write_result(self._run(self.client.set, namespace, key, value, ttl_seconds=_ttl(ttl_seconds)))

    def delete(self, namespace, key):
        return _delete_result(self._run(self.client.delete, namespace, key))

    def increment(self, namespace, key, *, delta=1, ttl_seconds=None, initial_value=0):
        return _write_result(self._run(self.client.increment, namespace, key, delta=_integer("delta", delta),
                                       ttl_seconds=_ttl(ttl_seconds), initial_value=_integer("initial_value", initial_value)))

    def close(self):
        with self._guard:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.client.close(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    def _run(self, operation, *args, **kwargs):
        with self._guard:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="kvworker-atlas", daemon=True)
                self._thread.start()
            loop = self._loop
        try:
            return asyncio.run_coroutine_threadsafe(operation(*args, **kwargs), loop).result()
        except KeyValueStoreError as error:
            raise _to_atlas(error) from error


def _ttl(ttl_seconds):
    """A TTL as ATLAS's own adapter takes it: any number, or text that reads as one (a model's "60")."""
    if ttl_seconds is None:
        return None
    try:
        return float(ttl_seconds)
    except (TypeError, ValueError):
        raise _to_atlas(KeyValueStoreError(f"TTL must be numeric, not {ttl_seconds!r}")) from None


def _integer(name, value):
    """An increment's integer argument, refused as ATLAS's own adapter refuses it (a bool is an int, as in Python)."""
    if not isinstance(value, int):
        raise _to_atlas(InvalidValueTypeError(f"{name} must be an integer, not {value!r}"))
    return int(value)


def _atlas():
    """ATLAS's kv_store module when it can be imported, else None."""
    try:
        return importlib.import_module(ATLAS_MODULE)
    except ImportError:
        return None


def _to_atlas(error):
    """ATLAS's exception of the same name as ``error`` (else ATLAS's KeyValueStoreError); ``error`` without ATLAS."""
    kv_store = _atlas()
    base = getattr(kv_store, "KeyValueStoreError", None)
    if not isinstance(base, type):
        return error
    cls = getattr(kv_store, error.code, None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        cls = base
    converted = cls(error.message if cls.__name__ == error.code else f"{error.code}: {error.message}")
    converted.code, converted.message = error.code, error.message
    for name in ("current_version", "message_id", "reply_code"):
        if hasattr(error, name):
            setattr(converted, name, getattr(error, name))
    return converted


class KvResult:
    """A result with ATLAS's ``to_dict()``, for hosts without ATLAS's result classes."""

    def __init__(self, reply):
        self.reply = dict(reply)

    def to_dict(self):
        return MappingProxyType(dict(self.reply))

    def __repr__(self):
        return f"KvResult({self.reply!r})"


def _atlas_results():
    kv_store = _atlas()
    if kv_store is None or not all(hasattr(kv_store, name) for name in _RESULT_CLASSES):
        return None
    return kv_store


def _record(kv_store, reply):
    ttl = reply.get("ttl_seconds")
    return kv_store._StoreRecord(namespace=reply["namespace"], key=reply["key"], value=reply.get("value"),
                                 expires_at=None if ttl is None else time.time() + ttl)


def _get_result(reply):
    kv_store = _atlas_results()
    if kv_store is None:
        return KvResult(reply)
    return kv_store._GetResult(namespace=reply["namespace"], key=reply["key"], found=reply["found"],
                               record=_record(kv_store, reply) if reply["found"] else None)


def _write_result(reply):
    kv_store = _atlas_results()
    if kv_store is None:
        return KvResult(reply)
    return kv_store._WriteResult(namespace=reply["namespace"], key=reply["key"], record=_record(kv_store, reply))


def _delete_result(reply):
    kv_store = _atlas_results()
    if kv_store is None:
        return KvResult(reply)
    return kv_store._DeleteResult(namespace=reply["namespace"], key=reply["key"], deleted=reply["deleted"])
