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

    /// <summary>A port on 127.0.0.1 that nothing listens on (until something takes it).</summary>
    public static int FreePort()
    {
        using var socket = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        socket.Start();
        return ((System.Net.IPEndPoint)socket.LocalEndpoint).Port;
    }

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
public class RedisFixture : IAsyncLifetime
{
    private readonly string _base = "kvtest:" + Guid.NewGuid().ToString("N");

    public string Configuration { get; private set; } = "";

    /// <summary>A connection for the tests' own look at what the adapter stored.</summary>
    public ConnectionMultiplexer Connection { get; private set; } = null!;

    /// <summary>The prefix of the store that adapters share unless they ask for one of their own.</summary>
    public string SharedPrefix => _base + ":shared:";

    public string NewIsolatedPrefix() => $"{_base}:{Guid.NewGuid():N}:";

    /// <summary>A StackExchange.Redis configuration string for the server the tests run against.</summary>
    protected virtual Task<string> ServerAsync() => RedisTestServer.ConfigurationAsync();

    public virtual async Task InitializeAsync()
    {
        Configuration = await ServerAsync();
        // AbortOnConnectFail (the default): no server, no tests.
        Connection = await ConnectionMultiplexer.ConnectAsync(Configuration);
    }

    public async Task DisposeAsync()
    {
        foreach (var server in Connection.GetServers().Where(server => !server.IsReplica))
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

/// <summary>
/// A key space on the Redis Cluster named by KV_TEST_REDIS_CLUSTER (its nodes,
/// <c>host:port,host:port,...</c>; scripts/test.sh sets it, and scripts/services.sh
/// brings the cluster up). Without a cluster there, the tests fail: they never skip.
/// </summary>
public sealed class RedisClusterFixture : RedisFixture
{
    protected override Task<string> ServerAsync() =>
        Environment.GetEnvironmentVariable("KV_TEST_REDIS_CLUSTER") is { Length: > 0 } nodes
            ? Task.FromResult(nodes)
            : throw new InvalidOperationException(
                "KV_TEST_REDIS_CLUSTER is not set: name the nodes of a Redis Cluster (scripts/test.sh brings one up on 127.0.0.1:16901-16903)");

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        var primaries = Connection.GetServers().Count(server => server.ServerType == ServerType.Cluster && !server.IsReplica);
        if (primaries < 3)
            throw new InvalidOperationException($"KV_TEST_REDIS_CLUSTER ({Configuration}) is not a Redis Cluster of 3 primaries: {primaries} found");
    }
}
