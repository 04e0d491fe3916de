
namespace KvWorker.Redis.Tests;

/// <summary>
/// The adapter conformance suite against the Redis adapter: every adapter
/// connects on its own, shared stores use the fixture's prefix, and an
/// isolated store is a fresh key prefix.
/// </summary>
public abstract class RedisConformanceTests(RedisFixture redis) : KvStoreAdapterConformanceTests
{
    private readonly List<RedisKvStoreAdapter> _adapters = [];

    protected override Task<IKvStoreAdapter> CreateAdapterAsync(AdapterSettings settings)
    {
        var prefix = settings.Isolated ? redis.NewIsolatedPrefix() : redis.SharedPrefix;
        var options = redis.Options(prefix, settings.NamespaceQuotaBytes, settings.GlobalQuotaBytes);
        if (settings.PurgeBatchSize is { } batchSize) options.PurgeBatchSize = batchSize;
        var adapter = redis.Connect(options, Events);
        _adapters.Add(adapter);
        return Task.FromResult<IKvStoreAdapter>(adapter);
    }

    public override async Task DisposeAsync()
    {
        foreach (var adapter in _adapters) await adapter.DisposeAsync();
    }
}

/// <summary>The suite on a standalone Redis (KV_TEST_REDIS).</summary>
public sealed class RedisAdapterConformanceTests(RedisFixture redis) : RedisConformanceTests(redis), IClassFixture<RedisFixture>;

/// <summary>The suite on a Redis Cluster of three primaries (KV_TEST_REDIS_CLUSTER).</summary>
public sealed class RedisClusterAdapterConformanceTests(RedisClusterFixture redis) : RedisConformanceTests(redis), IClassFixture<RedisClusterFixture>;
