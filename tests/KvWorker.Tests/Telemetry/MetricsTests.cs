using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using KvWorker.Configuration;
using KvWorker.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace KvWorker.Tests.Telemetry;

/// <summary>The worker's instruments record what the worker does, seen by an in-process listener.</summary>
[Collection(WorkerCollection.Name)]
public sealed class MetricsTests(WorkerFixture worker) : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<(string Instrument, double Value, Dictionary<string, string?> Tags)> _measurements = new();

    private void Listen()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == KvMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var dictionary = new Dictionary<string, string?>();
        foreach (var (key, tagValue) in tags) dictionary[key] = tagValue?.ToString();
        _measurements.Enqueue((instrument.Name, value, dictionary));
    }

    /// <summary>Measurements of one instrument whose tags include all of <paramref name="tags"/>.</summary>
    private double[] Values(string instrument, params (string Key, string Value)[] tags) =>
        _measurements.Where(m => m.Instrument == instrument && tags.All(t => m.Tags.GetValueOrDefault(t.Key) == t.Value))
            .Select(m => m.Value).ToArray();

    [Fact]
    public async Task Operations_are_counted_and_timed_by_operation_and_outcome_and_quota_rejections_by_namespace()
    {
        Listen();
        var ns = "metrics-" + Guid.NewGuid().ToString("N");
        await using var client = await worker.RawClientAsync();

        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "text", value = "not a number" });
        await client.CallAsync(KvOperations.Increment.Queue, new { @namespace = ns, key = "text" });
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "big", value = new string('x', 1024 * 1024 + 1) });
        await client.CallAsync(KvOperations.Usage.Queue, new { @namespace = ns });

        Assert.NotEmpty(Values("kv.operations", ("kv.operation", "kv_set"), ("kv.outcome", "ok")));
        Assert.NotEmpty(Values("kv.operations", ("kv.operation", "kv_increment"), ("kv.outcome", KvErrorCodes.InvalidValueTypeError)));
        var durations = Values("kv.operation.duration", ("kv.operation", "kv_increment"), ("kv.outcome", KvErrorCodes.InvalidValueTypeError));
        Assert.NotEmpty(durations);
        Assert.All(durations, seconds => Assert.InRange(seconds, 0, 30));
        Assert.Equal([1.0], Values("kv.quota.rejections", ("kv.namespace", ns), ("kv.quota", "namespace")));
        Assert.Equal([14.0], Values("kv.namespace.usage", ("kv.namespace", ns))); // "not a number" with its quotes
    }

    [Fact]
    public async Task A_purge_records_the_entries_and_bytes_it_removed_per_namespace()
    {
        Listen();
        var ns = "purge-" + Guid.NewGuid().ToString("N");
        await using var client = await worker.RawClientAsync();
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "a", value = "abc", ttl_seconds = 60 });
        await client.CallAsync(KvOperations.Set.Queue, new { @namespace = ns, key = "b", value = 12345, ttl_seconds = 60 });
        await worker.Database.ExpireAsync(ns, "a");
        await worker.Database.ExpireAsync(ns, "b");

        // The worker's scheduled purge may be running (then this one does nothing and says so)
        // or get there first; either is a kv_purge request and records alike.
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var purge = await client.CallAsync(KvOperations.Purge.Queue, new { @namespace = ns });
            if (purge.GetProperty("ran").GetBoolean()) break;
            await Task.Delay(200);
        }

        Assert.Equal([1.0], Values("kv.purge.runs", ("kv.namespace", ns)));
        Assert.Equal([2.0], Values("kv.purge.entries", ("kv.namespace", ns)));
        Assert.Equal([10.0], Values("kv.purge.bytes", ("kv.namespace", ns))); // "abc" and 12345
    }

    [Fact]
    public async Task Exporting_is_off_by_default_and_on_when_an_otlp_endpoint_is_configured()
    {
        // An OTLP/HTTP receiver that answers every export and reports the paths posted to.
        var port = HealthTests.FreePort();
        using var receiver = new System.Net.HttpListener { Prefixes = { $"http://127.0.0.1:{port}/" } };
        receiver.Start();
        var paths = new ConcurrentQueue<string>();
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var context = await receiver.GetContextAsync();
                    paths.Enqueue(context.Request.Url!.AbsolutePath);
                    context.Response.Close();
                }
            }
            catch (Exception ex) when (ex is System.Net.HttpListenerException or ObjectDisposedException)
            {
                // The receiver was closed at the end of the test.
            }
        });
        var groupCommits = GroupCommit.Tracing; // exists before the tracer provider subscribes to it
        using var off = BuildHost(new Dictionary<string, string?>());
        using var on = BuildHost(new Dictionary<string, string?>
        {
            [TelemetryExtensions.OtlpEndpointKey] = $"http://127.0.0.1:{port}",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        });

        Assert.Null(off.Services.GetService<TracerProvider>());
        Assert.Null(off.Services.GetService<MeterProvider>());
        var tracing = on.Services.GetRequiredService<TracerProvider>();
        var metrics = on.Services.GetRequiredService<MeterProvider>();
        using (groupCommits.StartActivity("exported")) { }
        KvMetrics.PurgeCompleted("otlp-" + Guid.NewGuid().ToString("N"), 1, 10);
        await Task.Run(() => tracing.ForceFlush(10_000) && metrics.ForceFlush(10_000));
        Assert.Contains("/v1/traces", paths);
        Assert.Contains("/v1/metrics", paths);
    }

    /// <summary>The worker's host as Program.cs builds it, with settings present before registration, as the environment's are.</summary>
    private static IHost BuildHost(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddKvWorker();
        return builder.Build();
    }

    public void Dispose() => _listener.Dispose();
}
