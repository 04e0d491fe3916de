using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using KvWorker.Events;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvWorker.Redis.Tests;

/// <summary>The worker's registration of the <c>redis</c> provider, and requests and personas that select it.</summary>
public sealed class RedisProviderTests(RedisFixture redis) : IClassFixture<RedisFixture>
{
    private const string RedisKey = RedisAdapterOptions.Section;
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");

    /// <summary>
    /// Settings with a PostgreSQL URL that no test here connects to, the test server as Redis, and
    /// personas with both flags for the harness's requests (the in-memory transport has no user_id).
    /// </summary>
    private Dictionary<string, string?> Settings(string prefix) => new()
    {
        ["tools:kv_store:adapters:postgres:url"] = "Host=127.0.0.1;Port=1;Username=unused;Database=unused",
        [$"{RedisKey}:url"] = redis.Configuration,
        [$"{RedisKey}:key_prefix"] = prefix,
        ["tools:kv_store:personas:tester:flags:0"] = KvStoreManifest.ReadFlag,
        ["tools:kv_store:personas:tester:flags:1"] = KvStoreManifest.WriteFlag,
        ["tools:kv_store:personas:planner:flags:0"] = KvStoreManifest.ReadFlag,
        ["tools:kv_store:personas:planner:flags:1"] = KvStoreManifest.WriteFlag,
        ["tools:kv_store:anonymous:personas:0"] = "tester",
        ["tools:kv_store:anonymous:personas:1"] = "planner",
        ["tools:kv_store:anonymous:default_persona"] = "tester",
    };

    /// <summary>The storage registrations exactly as the worker makes them, with the consumers on MassTransit's test harness.</summary>
    private static async Task<ServiceProvider> StartHarnessAsync(Dictionary<string, string?> settings, bool publishThroughTheBus = false)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance)
            .AddSingleton(typeof(ILogger<>), typeof(NullLogger<>))
            .AddKvStore(configuration)
            .AddSingleton(typeof(IKvEventPublisher), publishThroughTheBus ? typeof(MassTransitEventPublisher) : typeof(RecordedEvents))
            // No PostgreSQL here: none of the providers' background services (schema, outbox) runs.
            .RemoveAll<Microsoft.Extensions.Hosting.IHostedService>()
            .AddMassTransitTestHarness(bus => bus.AddKvRequestConsumers())
            .BuildServiceProvider(true);
        await services.GetRequiredService<ITestHarness>().Start();
        return services;
    }

    private static async Task<TResult> RequestAsync<TRequest, TResult>(ServiceProvider services, TRequest request)
        where TRequest : class where TResult : class
    {
        var response = await services.GetRequiredService<ITestHarness>().GetRequestClient<TRequest>().GetResponse<TResult, KvError>(request);
        if (response.Is(out Response<KvError>? error)) Assert.Fail($"{error!.Message.Error.Code}: {error.Message.Error.Message}");
        Assert.True(response.Is(out Response<TResult>? result));
        return result!.Message;
    }

    [Fact]
    public async Task A_request_naming_the_redis_provider_is_stored_in_redis()
    {
        var prefix = redis.NewIsolatedPrefix();
        await using var services = await StartHarnessAsync(Settings(prefix));
        await using var direct = redis.Connect(redis.Options(prefix));
        var ns = NewNamespace();

        await RequestAsync<KvSet, KvSetResult>(services, new KvSet
        {
            Namespace = ns, Key = "plan", Value = JsonDocument.Parse("""{"step":1}""").RootElement, Provider = "redis",
        });
        var read = await RequestAsync<KvGet, KvGetResult>(services, new KvGet { Namespace = ns, Key = "plan", Provider = "redis" });

        Assert.True(read.Found);
        Assert.Equal("""{"step":1}""", (await direct.GetAsync(ns, "plan", CancellationToken.None)).Value!.Value.GetRawText());
    }

    [Fact]
    public async Task A_persona_configured_with_the_redis_provider_uses_it()
    {
        var prefix = redis.NewIsolatedPrefix();
        var settings = Settings(prefix);
        settings["tools:kv_store:personas:planner:provider"] = "redis";
        await using var services = await StartHarnessAsync(settings);
        await using var direct = redis.Connect(redis.Options(prefix));
        var ns = NewNamespace();

        var counter = await RequestAsync<KvIncrement, KvIncrementResult>(services,
            new KvIncrement { Namespace = ns, Key = "turns", Delta = 3, Persona = "planner" });

        Assert.Equal(3, counter.Value.GetInt64());
        Assert.Equal("3", (await direct.GetAsync(ns, "turns", CancellationToken.None)).Value!.Value.GetRawText());
    }

    [Fact]
    public async Task Redis_can_be_the_default_adapter()
    {
        var prefix = redis.NewIsolatedPrefix();
        var settings = Settings(prefix);
        settings["tools:kv_store:default_adapter"] = "redis";
        await using var services = await StartHarnessAsync(settings);
        await using var direct = redis.Connect(redis.Options(prefix));
        var ns = NewNamespace();

        await RequestAsync<KvIncrement, KvIncrementResult>(services, new KvIncrement { Namespace = ns, Key = "c" });

        Assert.True((await direct.GetAsync(ns, "c", CancellationToken.None)).Found);
    }

    [Fact]
    public async Task A_quota_threshold_event_of_the_redis_provider_is_counted_as_published_from_the_outbox()
    {
        var published = new ConcurrentQueue<string?>();
        using var listener = new MeterListener();
        // Whichever meter counts it: the provider's own or the worker's.
        listener.InstrumentPublished = (instrument, meters) =>
        {
            if (instrument.Name == "kv.outbox.published") meters.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var (name, value) in tags)
                if (name == "kv.event") published.Enqueue(value as string);
        });
        listener.Start();
        var settings = Settings(redis.NewIsolatedPrefix());
        settings[$"{RedisKey}:namespace_quota_bytes"] = "10";
        await using var services = await StartHarnessAsync(settings, publishThroughTheBus: true);

        // 9 of 10 bytes: past the default threshold of 0.8.
        await RequestAsync<KvSet, KvSetResult>(services, new KvSet
        {
            Namespace = NewNamespace(), Key = "k", Value = JsonDocument.Parse("123456789").RootElement, Provider = "redis",
        });

        Assert.True(await services.GetRequiredService<ITestHarness>().Published.Any<NamespaceQuotaThresholdReached>());
        Assert.Contains(nameof(NamespaceQuotaThresholdReached), published);
    }

    [Fact]
    public void The_redis_provider_is_registered_only_when_its_url_is_configured()
    {
        static IReadOnlyCollection<string> Names(Dictionary<string, string?> settings)
        {
            var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
            using var services = new ServiceCollection()
                .AddSingleton<IConfiguration>(configuration)
                .AddKvStore(configuration)
                .BuildServiceProvider();
            return services.GetRequiredService<KvStoreAdapterRegistry>().Names;
        }

        var withRedis = Settings("unused:");
        var withoutRedis = new Dictionary<string, string?>(withRedis) { [$"{RedisKey}:url"] = null };

        Assert.Equal(["postgres", "redis"], Names(withRedis).Order());
        Assert.Equal(["postgres"], Names(withoutRedis));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_readiness_check_answers_unhealthy_within_its_budget_on_its_first_call_with_redis_down(bool listening)
    {
        // Nothing listens on a free port; a listener that never accepts completes the TCP handshake and
        // never answers, as a hung server. Either way the client cannot set up its connection, which the
        // first call would wait for: up to the connect time-out for each of its three tries, made 30 s
        // here so that a check waiting for it stands apart from a slow first call on a busy machine.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var port = listening ? ((System.Net.IPEndPoint)silent.LocalEndpoint).Port : RedisTestServer.FreePort();
        var settings = Settings(redis.NewIsolatedPrefix());
        settings[$"{RedisKey}:url"] = $"127.0.0.1:{port},connectTimeout=30000";
        await using var services = await StartHarnessAsync(settings);
        var elapsed = Stopwatch.StartNew();

        var report = await services.GetRequiredService<HealthCheckService>().CheckHealthAsync(check => check.Name == "redis");

        elapsed.Stop();
        Assert.Equal(HealthStatus.Unhealthy, report.Entries["redis"].Status);
        // Why, for /health/ready; no exception, whose stack trace would be logged at every probe.
        Assert.StartsWith("Redis unreachable: ", report.Entries["redis"].Description);
        Assert.Null(report.Entries["redis"].Exception);
        Assert.True(elapsed.Elapsed < RedisHealthCheck.Timeout + TimeSpan.FromSeconds(10), $"the first check took {elapsed.Elapsed}");
    }

    [Fact]
    public async Task The_first_requests_naming_the_redis_provider_get_store_unavailable_within_their_budget_while_redis_does_not_answer()
    {
        // A listener that never accepts completes the TCP handshake and never answers, as a hung server:
        // the client's first connect takes its connect time-out for each of its three tries, made 30 s
        // here so that a request waiting for it stands apart from slow first requests on a busy machine
        // (up to 5 s seen under load against the 2 s budget). The provider is created on the first
        // request, and neither that request nor those racing it may wait for the connect past their budget.
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var settings = Settings(redis.NewIsolatedPrefix());
        settings[$"{RedisKey}:url"] = $"127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port},connectTimeout=30000";
        settings["tools:kv_store:request_timeout_seconds"] = "2";
        await using var services = await StartHarnessAsync(settings);
        var client = services.GetRequiredService<ITestHarness>().GetRequestClient<KvGet>();
        var elapsed = Stopwatch.StartNew();

        var replies = await Task.WhenAll(Enumerable.Range(0, 3).Select(async _ =>
            await client.GetResponse<KvGetResult, KvError>(new KvGet { Namespace = NewNamespace(), Key = "k", Provider = "redis" })));

        elapsed.Stop();
        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(2 + 10), $"the first requests took {elapsed.Elapsed}");
        foreach (var reply in replies)
        {
            Assert.True(reply.Is(out Response<KvError>? error));
            Assert.Equal(KvErrorCodes.StoreUnavailableError, error!.Message.Error.Code);
        }
    }

    [Theory]
    [InlineData("url=127.0.0.1:6379,nonsense=1", "tools:kv_store:adapters:redis:url is not a StackExchange.Redis configuration string")]
    [InlineData("key_prefix=", "tools:kv_store:adapters:redis:key_prefix must not be empty")]
    [InlineData("key_prefix=kv{1}:", "tools:kv_store:adapters:redis:key_prefix must not contain '{' or '}'")]
    [InlineData("quota_thresholds:0=1.5", "tools:kv_store:adapters:redis:quota_thresholds must be fractions of the quota")]
    // What binding would drop without a word, leaving the quota with no threshold events.
    [InlineData("quota_thresholds:0=abc", "tools:kv_store:adapters:redis:quota_thresholds:0 must be a number, not 'abc'")]
    [InlineData("quota_thresholds=0.5", "tools:kv_store:adapters:redis:quota_thresholds must be a list, not the single value '0.5'")]
    // A misspelt key, which binding skips: the provider's section is the worker's own.
    [InlineData("prefix=kv2:", "tools:kv_store:adapters:redis:prefix is not a setting the worker reads (tools:kv_store:adapters:redis takes url, key_prefix, ")]
    [InlineData("namespace_quota_bytes=0", "tools:kv_store:adapters:redis:namespace_quota_bytes must be a positive number of bytes")]
    [InlineData("global_quota_bytes=-1", "tools:kv_store:adapters:redis:global_quota_bytes must be a positive number of bytes")]
    [InlineData("request_retention_seconds=0", "tools:kv_store:adapters:redis:request_retention_seconds must be a number of seconds, at least 1")]
    [InlineData("request_retention_seconds=1e20", "tools:kv_store:adapters:redis:request_retention_seconds must be a number of seconds, at least 1 and at most 3153600000")]
    public void Invalid_redis_configuration_fails_validation_naming_the_key(string setting, string message)
    {
        var settings = Settings("kv:");
        var (key, value) = (setting[..setting.IndexOf('=', StringComparison.Ordinal)], setting[(setting.IndexOf('=', StringComparison.Ordinal) + 1)..]);
        settings[$"{RedisKey}:{key}"] = value;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddKvStore(configuration)
            .BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisAdapterOptions>>().Value);

        Assert.Contains(message, error.Message);
    }
}
