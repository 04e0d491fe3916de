using StackExchange.Redis;

namespace KvWorker.Redis.Tests;

/// <summary>A global quota set on a store that already holds data: its counter starts at what the namespaces hold.</summary>
public abstract class RedisGlobalCounterTests(RedisFixture redis)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>A JSON string of <paramref name="bytes"/> bytes, quotes included.</summary>
    private static StoredValue ValueOfSize(int bytes) =>
        StoredValue.From(JsonDocument.Parse($"\"{new string('x', bytes - 2)}\"").RootElement, maxDepth: 32);

    [Fact]
    public async Task A_global_quota_set_on_a_store_that_holds_data_counts_that_data_before_the_first_write()
    {
        var prefix = redis.NewIsolatedPrefix();
        // Spread over buckets, and so over the cluster's primaries.
        var namespaces = Enumerable.Range(0, 30).Select(i => $"ns-{i}-{Guid.NewGuid():N}").ToArray();
        await using (var withoutQuota = redis.Connect(redis.Options(prefix)))
        {
            foreach (var ns in namespaces) await withoutQuota.SetAsync(ns, "k", ValueOfSize(50), null, null, None);
        }
        var counter = new RedisKeys(prefix).GlobalBytes;
        Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(counter));

        await using var withQuota = redis.Connect(redis.Options(prefix, globalQuotaBytes: 1600));
        // A delete first: what it frees comes off the counted 1500, not off a counter starting at zero.
        await withQuota.DeleteAsync(namespaces[0], "k", null, None);
        Assert.Equal(1450, (long)await redis.Connection.GetDatabase().StringGetAsync(counter));
        var refused = await Assert.ThrowsAsync<QuotaExceededException>(() =>
            withQuota.SetAsync("ns-" + Guid.NewGuid().ToString("N"), "k", ValueOfSize(151), null, null, None));
        await withQuota.SetAsync("ns-" + Guid.NewGuid().ToString("N"), "k", ValueOfSize(150), null, null, None);

        Assert.Equal((KvErrorCodes.GlobalQuotaExceededError, 1450L), (refused.Code, refused.UsedBytes));
        Assert.Equal(1600, (long)await redis.Connection.GetDatabase().StringGetAsync(counter));
    }

    [Fact]
    public async Task A_global_quota_set_again_after_a_period_without_it_counts_the_writes_of_that_period()
    {
        var prefix = redis.NewIsolatedPrefix();
        var counter = new RedisKeys(prefix).GlobalBytes;
        var (kept, written) = ("ns-" + Guid.NewGuid().ToString("N"), "ns-" + Guid.NewGuid().ToString("N"));
        await using (var withQuota = redis.Connect(redis.Options(prefix, globalQuotaBytes: 1000)))
        {
            await withQuota.SetAsync(kept, "k", ValueOfSize(100), null, null, None);
        }
        Assert.Equal(100, (long)await redis.Connection.GetDatabase().StringGetAsync(counter));

        await using (var withoutQuota = redis.Connect(redis.Options(prefix)))
        {
            // The first change without the quota deletes the counter, which would otherwise stay at 100.
            await withoutQuota.SetAsync(written, "k", ValueOfSize(300), null, null, None);
            Assert.False(await redis.Connection.GetDatabase().KeyExistsAsync(counter));
            await withoutQuota.SetAsync(written, "gone", ValueOfSize(50), 0.05, null, None);
            await Task.Delay(200);
            Assert.Equal(1, (await withoutQuota.PurgeExpiredAsync(new PurgeExpiredEntries(), None)).Entries);
        }

        await using var again = redis.Connect(redis.Options(prefix, globalQuotaBytes: 1000));
        var refused = await Assert.ThrowsAsync<QuotaExceededException>(() =>
            again.SetAsync("ns-" + Guid.NewGuid().ToString("N"), "k", ValueOfSize(601), null, null, None));
        await again.SetAsync("ns-" + Guid.NewGuid().ToString("N"), "k", ValueOfSize(600), null, null, None);

        Assert.Equal((KvErrorCodes.GlobalQuotaExceededError, 400L), (refused.Code, refused.UsedBytes));
        Assert.Equal(1000, (long)await redis.Connection.GetDatabase().StringGetAsync(counter));
    }
}

public sealed class StandaloneRedisGlobalCounterTests(RedisFixture redis) : RedisGlobalCounterTests(redis), IClassFixture<RedisFixture>;

public sealed class RedisClusterGlobalCounterTests(RedisClusterFixture redis) : RedisGlobalCounterTests(redis), IClassFixture<RedisClusterFixture>;
