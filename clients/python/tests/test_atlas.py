"""The ATLAS adapter, through a stand-in for ATLAS's kv_store module (tests/fixtures/atlas)."""
import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import ATLAS_FIXTURES, CLOSED_PORT_URL, URL, lose_connection_after_publishing, run_async

sys.path.insert(0, str(ATLAS_FIXTURES))

from modules.Tools.Base_Tools import kv_store  # noqa: E402  (the stand-in)

import kvworker  # noqa: E402
import kvworker.atlas  # noqa: E402

CONFIG = {"url": URL, "timeout": 10}


@pytest.fixture(autouse=True, scope="module")
def registered():
    assert kvworker.atlas.register() == "kvworker"


def test_register_adds_the_adapter_kvworker_to_atlas_registry():
    assert "kvworker" in kv_store.available_kv_store_adapters()
    factory = kv_store._ADAPTERS["kvworker"]
    assert factory.func is kvworker.atlas.create_adapter and factory.keywords == {"name": "kvworker"}


def test_register_without_atlas_says_what_is_missing():
    # kvworker importable (as in this process), ATLAS's module not.
    env = {**os.environ, "PYTHONPATH": str(Path(kvworker.__file__).parents[1])}
    run = subprocess.run([sys.executable, "-c", "import kvworker.atlas; kvworker.atlas.register()"],
                         capture_output=True, text=True, env=env, cwd="/")
    assert run.returncode != 0
    assert "ImportError: kvworker.atlas.register() needs ATLAS's module modules.Tools.Base_Tools.kv_store" in run.stderr
    assert "No module named 'modules'" in run.stderr


@run_async
async def test_the_four_operations_through_atlas_functions(ns):
    written = await kv_store.kv_set(namespace=ns, key="plan", value={"steps": ["search"]}, adapter_name="kvworker",
                                    adapter_config=CONFIG)
    assert dict(written) == {"namespace": ns, "key": "plan", "value": {"steps": ["search"]}}
    assert dict(await kv_store.kv_get(namespace=ns, key="plan", adapter_name="kvworker", adapter_config=CONFIG)) == \
        {"namespace": ns, "key": "plan", "found": True, "value": {"steps": ["search"]}}
    counter = await kv_store.kv_increment(namespace=ns, key="turns", delta=3, initial_value=10,
                                          adapter_name="kvworker", adapter_config=CONFIG)
    assert dict(counter) == {"namespace": ns, "key": "turns", "value": 13}
    assert dict(await kv_store.kv_delete(namespace=ns, key="plan", adapter_name="kvworker", adapter_config=CONFIG)) == \
        {"namespace": ns, "key": "plan", "deleted": True}
    assert dict(await kv_store.kv_get(namespace=ns, key="plan", adapter_name="kvworker", adapter_config=CONFIG)) == \
        {"namespace": ns, "key": "plan", "found": False}
    assert (await kv_store.kv_delete(namespace=ns, key="plan", adapter_name="kvworker",
                                     adapter_config=CONFIG))["deleted"] is False


def test_the_adapter_returns_atlas_own_result_objects(ns):
    adapter = kvworker.atlas.create_adapter(None, CONFIG)
    assert isinstance(adapter.set(ns, "k", 1, ttl_seconds=None), kv_store._WriteResult)
    assert isinstance(adapter.get(ns, "k"), kv_store._GetResult)
    assert isinstance(adapter.increment(ns, "k", delta=1, ttl_seconds=None, initial_value=0), kv_store._WriteResult)
    assert isinstance(adapter.delete(ns, "k"), kv_store._DeleteResult)


@run_async
async def test_ttls_are_written_and_reported_as_remaining_seconds(ns):
    written = await kv_store.kv_set(namespace=ns, key="k", value="v", ttl_seconds=60, adapter_name="kvworker",
                                    adapter_config=CONFIG)
    assert 59 < written["ttl_seconds"] <= 60
    got = await kv_store.kv_get(namespace=ns, key="k", adapter_name="kvworker", adapter_config=CONFIG)
    assert 0 < got["ttl_seconds"] <= 60
    counter = await kv_store.kv_increment(namespace=ns, key="c", ttl_seconds=30, adapter_name="kvworker",
                                          adapter_config=CONFIG)
    assert 29 < counter["ttl_seconds"] <= 30
    # An increment without a TTL keeps the entry's TTL; a set without one makes the entry persistent.
    counter = await kv_store.kv_increment(namespace=ns, key="c", adapter_name="kvworker", adapter_config=CONFIG)
    assert counter["value"] == 2 and 0 < counter["ttl_seconds"] <= 30
    await kv_store.kv_set(namespace=ns, key="k", value="v", adapter_name="kvworker", adapter_config=CONFIG)
    assert "ttl_seconds" not in await kv_store.kv_get(namespace=ns, key="k", adapter_name="kvworker",
                                                      adapter_config=CONFIG)
    # An entry whose TTL ran out is gone.
    await kv_store.kv_set(namespace=ns, key="brief", value=1, ttl_seconds=0.2, adapter_name="kvworker",
                          adapter_config=CONFIG)
    await asyncio.sleep(0.4)
    assert (await kv_store.kv_get(namespace=ns, key="brief", adapter_name="kvworker",
                                  adapter_config=CONFIG))["found"] is False


@run_async
async def test_quota_and_type_errors_raise_atlas_own_exceptions(ns):
    quota = kvworker.KvStoreClient(URL)
    try:
        quota_bytes = quota.usage(ns)["quota_bytes"]
    finally:
        quota.close()
    with pytest.raises(kv_store.NamespaceQuotaExceededError) as raised:
        await kv_store.kv_set(namespace=ns, key="big", value="x" * quota_bytes, adapter_name="kvworker",
                              adapter_config=CONFIG)
    assert isinstance(raised.value.__cause__, kvworker.NamespaceQuotaExceededError)

    await kv_store.kv_set(namespace=ns, key="text", value="words", adapter_name="kvworker", adapter_config=CONFIG)
    with pytest.raises(kv_store.InvalidValueTypeError) as raised:
        await kv_store.kv_increment(namespace=ns, key="text", adapter_name="kvworker", adapter_config=CONFIG)
    assert "not an integer" in str(raised.value)

    with pytest.raises(kv_store.ValueSerializationError):
        await kv_store.kv_set(namespace=ns, key="k", value={1, 2}, adapter_name="kvworker", adapter_config=CONFIG)


@run_async
async def test_arguments_are_read_as_atlas_own_adapter_reads_them(ns):
    # A TTL as text that reads as a number (as a model may send it); an increment's bool counts as an int.
    written = await kv_store.kv_set(namespace=ns, key="k", value=1, ttl_seconds="60", adapter_name="kvworker",
                                    adapter_config=CONFIG)
    assert 0 < written["ttl_seconds"] <= 60
    assert (await kv_store.kv_increment(namespace=ns, key="c", delta=True, adapter_name="kvworker",
                                        adapter_config=CONFIG))["value"] == 1

    with pytest.raises(kv_store.KeyValueStoreError, match="TTL must be numeric"):
        await kv_store.kv_set(namespace=ns, key="k", value=1, ttl_seconds="soon", adapter_name="kvworker",
                              adapter_config=CONFIG)
    # An infinite or NaN TTL is an invalid TTL (the worker takes finite ones): ATLAS's KeyValueStoreError, as for "soon".
    for ttl in ("inf", float("nan")):
        with pytest.raises(kv_store.KeyValueStoreError, match="finite") as raised:
            await kv_store.kv_set(namespace=ns, key="k", value=1, ttl_seconds=ttl, adapter_name="kvworker",
                                  adapter_config=CONFIG)
        assert type(raised.value) is kv_store.KeyValueStoreError
    for arguments in ({"delta": 1.5}, {"delta": "2"}, {"initial_value": 2.0}):
        with pytest.raises(kv_store.InvalidValueTypeError, match="must be an integer"):
            await kv_store.kv_increment(namespace=ns, key="c", adapter_name="kvworker", adapter_config=CONFIG,
                                        **arguments)
    assert (await kv_store.kv_get(namespace=ns, key="c", adapter_name="kvworker", adapter_config=CONFIG))["value"] == 1


@run_async
async def test_errors_atlas_has_no_class_for_raise_its_key_value_store_error_with_the_code(ns):
    with pytest.raises(kv_store.KeyValueStoreError) as raised:
        await kv_store.kv_increment(namespace=ns, key="c", adapter_name="kvworker",
                                    adapter_config={**CONFIG, "persona": "reader"})
    assert type(raised.value) is kv_store.KeyValueStoreError
    assert raised.value.code == "AccessDeniedError" and str(raised.value).startswith("AccessDeniedError: ")

    with pytest.raises(kv_store.KeyValueStoreError) as raised:
        await kv_store.kv_get(namespace=ns, key="k", adapter_name="kvworker",
                              adapter_config={"url": CLOSED_PORT_URL})
    assert raised.value.code == "KvConnectionError" and "cannot connect to RabbitMQ" in str(raised.value)


def test_the_message_id_of_a_request_that_may_have_been_applied_reaches_atlas(ns):
    adapter = kvworker.atlas.KvWorkerAdapter(URL, timeout=10)
    try:
        adapter.get(ns, "k")  # connects
        sent = lose_connection_after_publishing(adapter.client, CLOSED_PORT_URL)
        with pytest.raises(kv_store.KeyValueStoreError) as raised:
            adapter.increment(ns, "c", delta=1, ttl_seconds=None, initial_value=0)
    finally:
        adapter.close()
    assert raised.value.code == "KvConnectionError"
    assert sent and raised.value.message_id == sent[0]


@run_async
async def test_concurrent_increments_from_atlas_worker_threads_are_all_counted(ns):
    service = kv_store.build_kv_store_service(adapter_name="kvworker", adapter_config=CONFIG)
    results = await asyncio.gather(*(service.increment_value(ns, "counter") for _ in range(200)))
    assert sorted(result["value"] for result in results) == list(range(1, 201))
    assert (await service.get_value(ns, "counter"))["value"] == 200


def test_concurrent_increments_from_plain_threads_share_one_adapter(ns):
    adapter = kvworker.atlas.create_adapter(None, CONFIG)
    errors = []

    def work():
        try:
            for _ in range(25):
                adapter.increment(ns, "counter", delta=2, ttl_seconds=None, initial_value=0)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert adapter.get(ns, "counter").to_dict()["value"] == 400


@run_async
async def test_atlas_building_a_service_per_call_reuses_one_adapter_per_settings(ns):
    before = kv_store.factory_calls
    for _ in range(3):
        await kv_store.kv_increment(namespace=ns, key="c", adapter_name="kvworker", adapter_config=CONFIG)
    assert kv_store.factory_calls == before + 3
    first = kvworker.atlas.create_adapter(None, CONFIG)
    assert kvworker.atlas.create_adapter(None, dict(CONFIG)) is first
    assert kvworker.atlas.create_adapter(None, {**CONFIG, "persona": "reader"}) is not first


def test_settings_come_from_the_config_mapping_then_the_environment(monkeypatch):
    monkeypatch.setenv("KV_RABBITMQ_URL", URL)
    monkeypatch.setenv("KV_TIMEOUT_SECONDS", "7.5")
    monkeypatch.setenv("KV_PERSONA", "reader")
    assert kvworker.atlas.settings_from({}) == {"url": None, "timeout": 7.5, "persona": "reader", "provider": None}
    adapter = kvworker.atlas.create_adapter(None, {})
    assert (adapter.client.url, adapter.client.timeout, adapter.client.persona) == (URL, 7.5, "reader")
    config = {"url": "amqp://a:b@rabbit.example:5672/agents", "timeout": "3", "persona": "planner", "provider": "redis"}
    assert kvworker.atlas.settings_from(config) == {
        "url": "amqp://a:b@rabbit.example:5672/agents", "timeout": 3.0, "persona": "planner", "provider": "redis"}
    for timeout in ("soon", 0, -1, 86400.5):
        with pytest.raises(kv_store.KeyValueStoreError, match="timeout"):
            kvworker.atlas.settings_from({"timeout": timeout})


@run_async
async def test_config_manager_settings_and_the_provider_reach_the_worker(ns):
    class ConfigManager:  # the part of ATLAS's ConfigManager that build_kv_store_service reads
        def get_config(self, section, default=None):
            assert section == "tools"
            return {"kv_store": {"default_adapter": "kvworker",
                                 "adapters": {"kvworker": {"url": URL, "provider": "redis"}}}}

    await kv_store.kv_set(namespace=ns, key="k", value="in redis", config_manager=ConfigManager())
    assert (await kv_store.kv_get(namespace=ns, key="k", config_manager=ConfigManager()))["value"] == "in redis"
    assert (await kv_store.kv_get(namespace=ns, key="k", adapter_name="kvworker",
                                  adapter_config={**CONFIG, "provider": "postgres"}))["found"] is False


@run_async
async def test_a_call_naming_the_adapter_where_postgres_is_the_default_takes_the_adapter_own_settings(ns):
    class ConfigManager:  # SEED.md's config.yaml, postgres the default, with a section for kvworker
        def get_config(self, section, default=None):
            return {"kv_store": {"default_adapter": "postgres", "adapters": {
                "postgres": {"reuse_conversation_store": False, "url": "postgresql+psycopg://atlas:atlas@127.0.0.1:1/kv",
                             "namespace_quota_bytes": 2097152, "pool": {"size": 10, "timeout": 30}},
                "kvworker": {"url": URL, "provider": "redis"}}}}

    # ATLAS passes postgres's settings, its url a database DSN, to the adapter the call names.
    await kv_store.kv_set(namespace=ns, key="k", value="in redis", adapter_name="kvworker",
                          config_manager=ConfigManager())
    with kvworker.KvStoreClient(URL, provider="redis") as kv:
        assert kv.get(ns, "k")["value"] == "in redis"
    # What the call's adapter_config sets still wins over the section.
    with pytest.raises(kv_store.KeyValueStoreError) as raised:
        await kv_store.kv_set(namespace=ns, key="k", value=1, adapter_name="kvworker", config_manager=ConfigManager(),
                              adapter_config={"persona": "reader"})
    assert raised.value.code == "AccessDeniedError"


def test_without_atlas_the_adapter_returns_results_with_to_dict_and_raises_kvworker_errors(ns, monkeypatch):
    monkeypatch.setattr(kvworker.atlas, "ATLAS_MODULE", "no_such_atlas_module")
    adapter = kvworker.atlas.KvWorkerAdapter(URL)
    try:
        result = adapter.set(ns, "k", "text")
        assert type(result) is kvworker.atlas.KvResult
        assert dict(result.to_dict()) == {"namespace": ns, "key": "k", "value": "text", **(
            {"version": result.reply["version"]} if "version" in result.reply else {})}
        with pytest.raises(kvworker.InvalidValueTypeError):
            adapter.increment(ns, "k", delta=1, ttl_seconds=None, initial_value=0)
    finally:
        adapter.close()
    with pytest.raises(ImportError, match="no_such_atlas_module"):
        kvworker.atlas.register()
