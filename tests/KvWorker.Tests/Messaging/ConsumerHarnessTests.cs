using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using KvWorker.Configuration;
using KvWorker.Telemetry;
using Microsoft.Extensions.Configuration;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace KvWorker.Tests.Messaging;

/// <summary>The consumers on MassTransit's in-memory test harness, storing in the real database.</summary>
[Collection(DatabaseCollection.Name)]
public sealed class ConsumerHarnessTests(DatabaseFixture db)
{
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");

    private async Task<ServiceProvider> StartHarnessAsync(
        KvStoreOptions? options = null, Func<IKvStoreAdapter>? adapter = null, Func<IServiceCollection, IServiceCollection>? adapters = null)
    {
        IServiceCollection registrations = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder().Build())
            .AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance)
            .AddSingleton(typeof(ILogger<>), typeof(NullLogger<>))
            .AddSingleton(Options.Create(WithAnonymousTester(options ?? new KvStoreOptions())))
            .AddSingleton(Options.Create(new RabbitMqOptions()))
            .AddKvStoreAdapter("postgres", _ => adapter?.Invoke() ?? db.Adapter())
            .AddKvRequestPipeline();
        var services = (adapters?.Invoke(registrations) ?? registrations)
            .AddMassTransitTestHarness(bus => bus.AddKvRequestConsumers())
            .BuildServiceProvider(true);
        await services.GetRequiredService<ITestHarness>().Start();
        return services;
    }

    /// <summary>The in-memory transport has no AMQP user_id: grant its requests a persona with both flags.</summary>
    private static KvStoreOptions WithAnonymousTester(KvStoreOptions options)
    {
        options.Personas.TryAdd("tester", new PersonaOptions { Flags = [KvStoreManifest.ReadFlag, KvStoreManifest.WriteFlag] });
        options.Anonymous ??= new IdentityOptions { Personas = [.. options.Personas.Keys], DefaultPersona = "tester" };
        return options;
    }

    private static Task<Response<TResult, KvError>> Request<TRequest, TResult>(ServiceProvider services, TRequest request)
        where TRequest : class where TResult : class =>
        services.GetRequiredService<ITestHarness>().GetRequestClient<TRequest>().GetResponse<TResult, KvError>(request);

    [Fact]
    public async Task Set_then_get_returns_the_value_through_the_consumers()
    {
        await using var services = await StartHarnessAsync();
        var harness = services.GetRequiredService<ITestHarness>();
        var ns = NewNamespace();
        var value = JsonDocument.Parse("""{"mood":"curious","turns":[1,2]}""").RootElement;

        var set = await Request<KvSet, KvSetResult>(services, new KvSet { Namespace = ns, Key = "state", Value = value, TtlSeconds = 60 });
        var get = await Request<KvGet, KvGetResult>(services, new KvGet { Namespace = ns, Key = "state" });

        Assert.True(set.Is(out Response<KvSetResult>? setResult));
        Assert.Equal(60, setResult!.Message.TtlSeconds);
        Assert.True(get.Is(out Response<KvGetResult>? getResult));
        Assert.True(getResult!.Message.Found);
        Assert.True(JsonElement.DeepEquals(value, getResult.Message.Value!.Value));
        Assert.True(await harness.Consumed.Any<KvSet>());
        Assert.True(await harness.Consumed.Any<KvGet>());
    }

    [Fact]
    public async Task Increment_and_delete_reply_with_their_results()
    {
        await using var services = await StartHarnessAsync();
        var ns = NewNamespace();

        var first = await Request<KvIncrement, KvIncrementResult>(services, new KvIncrement { Namespace = ns, Key = "c", Delta = 2, InitialValue = 40 });
        var deleted = await Request<KvDelete, KvDeleteResult>(services, new KvDelete { Namespace = ns, Key = "c" });
        var missing = await Request<KvDelete, KvDeleteResult>(services, new KvDelete { Namespace = ns, Key = "c" });

        Assert.True(first.Is(out Response<KvIncrementResult>? counter));
        Assert.Equal(42, counter!.Message.Value.GetInt64());
        Assert.True(deleted.Is(out Response<KvDeleteResult>? yes) && yes!.Message.Deleted);
        Assert.True(missing.Is(out Response<KvDeleteResult>? no) && !no!.Message.Deleted);
    }

    [Theory]
    [InlineData("", "k", "namespace must be a non-empty string")]
    [InlineData("ns", "", "key must be a non-empty string")]
    [InlineData("ns\0x", "k", "namespace must not contain control characters")]
    [InlineData("ns", "line\nbreak", "key must not contain control characters")]
    public async Task Invalid_names_get_a_key_value_store_error(string ns, string key, string message)
    {
        await using var services = await StartHarnessAsync();

        var response = await Request<KvGet, KvGetResult>(services, new KvGet { Namespace = ns, Key = key });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error!.Message.Error.Code);
        Assert.StartsWith(message, error.Message.Error.Message);
    }

    [Fact]
    public async Task Name_limits_count_characters_not_utf16_code_units()
    {
        await using var services = await StartHarnessAsync();
        var ns = NewNamespace();
        // U+1F600 is one character and two UTF-16 code units.
        var longestKey = string.Concat(Enumerable.Repeat("\U0001F600", new KvLimits().MaxKeyLength));
        var value = JsonDocument.Parse("1").RootElement;

        var written = await Request<KvSet, KvSetResult>(services, new KvSet { Namespace = ns, Key = longestKey, Value = value });
        var tooLong = await Request<KvSet, KvSetResult>(services, new KvSet { Namespace = ns, Key = longestKey + "x", Value = value });

        Assert.True(written.Is(out Response<KvSetResult>? result), (written.Message as KvError)?.Error.Message);
        Assert.Equal(longestKey, result!.Message.Key);
        Assert.True(tooLong.Is(out Response<KvError>? error));
        Assert.Equal($"key is longer than {new KvLimits().MaxKeyLength} characters", error!.Message.Error.Message);
    }

    [Fact]
    public async Task A_name_too_long_for_the_stores_key_index_is_refused_as_invalid_not_as_a_fault()
    {
        var limits = new KvLimits { MaxKeyLength = 2000 };
        await using var services = await StartHarnessAsync(adapters: registrations => registrations.AddSingleton(Options.Create(limits)));
        var ns = NewNamespace();
        // Random CJK characters, three bytes each in UTF-8, which PostgreSQL cannot compress.
        var random = new Random(7);
        var key = string.Concat(Enumerable.Range(0, 1500).Select(_ => (char)random.Next(0x4E00, 0x9FFF)));

        var response = await Request<KvSet, KvSetResult>(services, new KvSet { Namespace = ns, Key = key, Value = JsonDocument.Parse("1").RootElement });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error!.Message.Error.Code);
        Assert.StartsWith("the request is more than PostgreSQL can store: index row size", error.Message.Error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(1e12)]
    public async Task Invalid_ttls_are_rejected_and_nothing_is_written(double ttl)
    {
        await using var services = await StartHarnessAsync();
        var ns = NewNamespace();

        var response = await Request<KvSet, KvSetResult>(services,
            new KvSet { Namespace = ns, Key = "k", Value = JsonDocument.Parse("1").RootElement, TtlSeconds = ttl });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error!.Message.Error.Code);
        Assert.Equal((0L, 0L, 0L), await db.UsageAsync(ns));
    }

    [Fact]
    public async Task Unreachable_storage_is_retried_for_the_request_budget_then_answered_with_store_unavailable_error()
    {
        // Nothing listens on port 1: every attempt fails with a transient connection error.
        await using var deadDatabase = Npgsql.NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Username=u;Database=d;Timeout=1");
        var started = System.Diagnostics.Stopwatch.StartNew();
        await using var services = await StartHarnessAsync(new KvStoreOptions { RequestTimeoutSeconds = 1.5 }, adapter: () =>
            new PostgresKvStoreAdapter(deadDatabase, new PostgresAdapterOptions(), new KvLimits()));

        var response = await Request<KvIncrement, KvIncrementResult>(services, new KvIncrement { Namespace = "ns", Key = "c" });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.StoreUnavailableError, error!.Message.Error.Code);
        // What failed, not the cancellation that ended the retries.
        Assert.StartsWith("storage did not answer within 1.5 s: postgres unavailable: Failed to connect to 127.0.0.1:1", error.Message.Error.Message);
        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(1.5), "answered before the budget was spent on retries");
    }

    [Fact]
    public async Task Unreachable_storage_is_answered_with_store_unavailable_error_before_a_sooner_caller_deadline()
    {
        await using var deadDatabase = Npgsql.NpgsqlDataSource.Create("Host=127.0.0.1;Port=1;Username=u;Database=d;Timeout=1");
        await using var services = await StartHarnessAsync(new KvStoreOptions { RequestTimeoutSeconds = 30 }, adapter: () =>
            new PostgresKvStoreAdapter(deadDatabase, new PostgresAdapterOptions(), new KvLimits()));
        // The caller waits 10 s, less than the worker's own budget: its deadline bounds the retries, and the
        // worker answers a second before it (a tenth of the time left, at most a second). A 3 s caller left
        // 0.3 s, which a reply on a machine running eight test threads once overran.
        var client = services.GetRequiredService<ITestHarness>().Bus.CreateRequestClient<KvIncrement>(RequestTimeout.After(s: 10));

        // A reply sent at the deadline itself would come after the caller gave up (RequestTimeoutException).
        var response = await client.GetResponse<KvIncrementResult, KvError>(new KvIncrement { Namespace = "ns", Key = "c" });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.StoreUnavailableError, error!.Message.Error.Code);
    }

    [Fact]
    public async Task A_request_naming_an_unknown_provider_gets_a_clear_error()
    {
        await using var services = await StartHarnessAsync();

        var response = await Request<KvGet, KvGetResult>(services, new KvGet { Namespace = "ns", Key = "k", Provider = "redis" });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal(KvErrorCodes.KeyValueStoreError, error!.Message.Error.Code);
        Assert.Equal("unknown provider 'redis' named by request; registered providers: postgres", error.Message.Error.Message);
    }

    [Fact]
    public async Task A_persona_naming_an_unknown_provider_gets_a_clear_error()
    {
        var options = new KvStoreOptions { Personas = { ["planner"] = new PersonaOptions { Provider = "dynamo", Flags = [KvStoreManifest.ReadFlag] } } };
        await using var services = await StartHarnessAsync(options);

        var response = await Request<KvGet, KvGetResult>(services, new KvGet { Namespace = "ns", Key = "k", Persona = "planner" });

        Assert.True(response.Is(out Response<KvError>? error));
        Assert.Equal("unknown provider 'dynamo' named by persona 'planner'; registered providers: postgres", error!.Message.Error.Message);
    }

    [Fact]
    public async Task A_registered_provider_is_used_when_the_request_names_it()
    {
        await using var services = await StartHarnessAsync(adapters: services => services
            .AddKvStoreAdapter("tiny", _ => db.Adapter(namespaceQuotaBytes: 4)));
        var value = JsonDocument.Parse("\"12345\"").RootElement;

        var fits = await Request<KvSet, KvSetResult>(services, new KvSet { Namespace = NewNamespace(), Key = "k", Value = value });
        var tooBig = await Request<KvSet, KvSetResult>(services, new KvSet { Namespace = NewNamespace(), Key = "k", Value = value, Provider = "tiny" });

        Assert.True(fits.Is(out Response<KvSetResult>? _));
        Assert.True(tooBig.Is(out Response<KvError>? error));
        Assert.StartsWith("namespace '", error!.Message.Error.Message);
        Assert.Contains("quota of 4 bytes", error.Message.Error.Message);
    }

    [Fact]
    public async Task A_fault_no_check_foresaw_is_counted_and_timed_with_the_error_code_it_is_answered_with()
    {
        // kv_touch outcomes of this process's requests, whichever test sent them.
        var touches = new ConcurrentQueue<(string Instrument, string? Outcome)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, meters) =>
        {
            if (instrument.Meter.Name == KvMetrics.MeterName) meters.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? operation = null, outcome = null;
            foreach (var (name, value) in tags)
            {
                if (name == "kv.operation") operation = value as string;
                if (name == "kv.outcome") outcome = value as string;
            }
            if (operation == KvOperations.Touch.Queue) touches.Enqueue((instrument.Name, outcome));
        }
        listener.SetMeasurementEventCallback<long>((instrument, _, tags, _) => Record(instrument, tags));
        listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) => Record(instrument, tags));
        listener.Start();
        await using var services = await StartHarnessAsync(adapters: services => services
            .AddKvStoreAdapter("broken", _ => throw new InvalidOperationException("the adapter cannot be built")));

        // A MassTransit client gets MassTransit's fault; the endpoint's error filter answers a plain AMQP client.
        await Assert.ThrowsAsync<RequestFaultException>(() =>
            Request<KvTouch, KvTouchResult>(services, new KvTouch { Namespace = NewNamespace(), Key = "k", TtlSeconds = null, Provider = "broken" }));

        // What the error filter answers a plain AMQP client with.
        Assert.Contains(("kv.operations", KvErrorCodes.KeyValueStoreError), touches);
        Assert.Contains(("kv.operation.duration", KvErrorCodes.KeyValueStoreError), touches);
    }
}
