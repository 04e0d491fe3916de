using KvWorker.Redis;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Testcontainers.Redis;

namespace KvWorker.Redis.Tests;

/// <summary>
/// The Redis server the tests run against: the one named by KV_TEST_REDIS
/// (<c>host:port</c>; scripts/test.sh sets it), or a container when that is
/// unset. Without either, the tests fail loudly.
/// </summary>
public static class RedisTestServer
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static RedisContainer? _container;

    /// <summary>A StackExchange.Redis configuration string for the server.</summary>
    public static async Task<string> ConfigurationAsync()
    {
        var configured = Environment.GetEnvironmentVariable("KV_TEST_REDIS");
        if (!string.IsNullOrEmpty(configured)) return configured;
        await Gate.WaitAsync();
        try
        {
            if (_container is null)
            {
                var container = new RedisBuilder("redis:7.0").Build();
                await container.StartAsync();
                _container = container;
            }
            return _container.GetConnectionString();
        }
        finally
        {
            Gate.Release();
        }
    }
}

/// <summary>
/// A key space of its own on the test server (every key under one prefix),
/// removed when the test class is done; adapters made here connect like replicas.
/// </summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private readonly string _base = "kvtest:" + Guid.NewGuid().ToString("N");

    public string Configuration { get; private set; } = "";

    /// <summary>A connection for the tests' own look at what the adapter stored.</summary>
    public ConnectionMultiplexer Connection { get; private set; } = null!;

    /// <summary>The prefix of the store that adapters share unless they ask for one of their own.</summary>
    public string SharedPrefix => _base + ":shared:";

    public string NewIsolatedPrefix() => $"{_base}:{Guid.NewGuid():N}:";

    public async Task InitializeAsync()
    {
        Configuration = await RedisTestServer.ConfigurationAsync();
        // AbortOnConnectFail (the default): no server, no tests.
        Connection = await ConnectionMultiplexer.ConnectAsync(Configuration);
    }

    public async Task DisposeAsync()
    {
        foreach (var server in Connection.GetServers())
            await foreach (var key in server.KeysAsync(pattern: _base + ":*"))
                await Connection.GetDatabase().KeyDeleteAsync(key);
        await Connection.DisposeAsync();
    }

    public RedisAdapterOptions Options(string prefix, long namespaceQuotaBytes = RedisAdapterOptions.DefaultNamespaceQuotaBytes, long? globalQuotaBytes = null) => new()
    {
        Url = Configuration,
        KeyPrefix = prefix,
        NamespaceQuotaBytes = namespaceQuotaBytes,
        GlobalQuotaBytes = globalQuotaBytes,
    };

    /// <summary>An adapter with a connection of its own, as a worker replica has, publishing its events to <paramref name="events"/>.</summary>
    public RedisKvStoreAdapter Connect(RedisAdapterOptions options, IKvEventPublisher? events = null) =>
        RedisKvStoreAdapter.Connect(options, KvStoreAdapterConformanceTests.MaxIntegerDigits, events ?? new RecordedEvents(), NullLogger.Instance);
}
