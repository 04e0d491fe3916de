
namespace KvWorker.Redis.Tests;

/// <summary>
/// The adapter conformance suite against the Redis adapter: every adapter
/// connects on its own, shared stores use the fixture's prefix, and an
/// isolated store is a fresh key prefix.
/// </summary>
public abstract class RedisConformanceTests(RedisFixture redis) : KvStoreAdapterConformanceTests
{
    private readonly List<RedisKvStoreAdapter> _adapters = [];

    protected override async Task<IKvStoreAdapter> CreateAdapterAsync(AdapterSettings settings)
    {
        var prefix = settings.Isolated ? redis.NewIsolatedPrefix() : redis.SharedPrefix;
        var options = redis.Options(prefix, settings.NamespaceQuotaBytes, settings.GlobalQuotaBytes);
        if (settings.PurgeBatchSize is { } batchSize) options.PurgeBatchSize = batchSize;
        var adapter = redis.Connect(options, Events);
        _adapters.Add(adapter);
        // The adapter connects in the background, and operations waiting for the connection resume side
        // by side on the thread pool when it is up: a test's burst of 2000 writes, sent one by one, would
        // then go out all at once, which timed out (5 s) when both classes ran together on two cores. The
        // suite checks semantics, so it starts on a connected adapter (RedisAdapterTests checks connecting).
        await adapter.PingAsync(CancellationToken.None);
        return adapter;
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
