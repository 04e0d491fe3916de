using System.Diagnostics;
using System.Diagnostics.Metrics;
using KvWorker.Contracts;

namespace KvWorker.Telemetry;

/// <summary>
/// The worker's own instruments, on the meter <c>KvWorker</c>. Recording costs
/// next to nothing while nobody listens; exporting is switched on by
/// <see cref="TelemetryExtensions.AddKvTelemetry"/>. Static so that every part
/// of the worker (request handler, purge) records without wiring.
/// </summary>
public static class KvMetrics
{
    public const string MeterName = "KvWorker";

    private static readonly Meter Meter = new(MeterName, typeof(KvMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> Operations = Meter.CreateCounter<long>(
        "kv.operations", "{operation}", "Requests answered, by operation and outcome (ok or the error code)");

    // Buckets for requests that take a millisecond or so (the SDK's default ones, 0 to 10000, suit milliseconds).
    private static readonly Histogram<double> OperationDuration = Meter.CreateHistogram<double>(
        "kv.operation.duration", "s", "Time from receiving a request to having its reply, by operation and outcome",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });

    private static readonly Counter<long> QuotaRejections = Meter.CreateCounter<long>(
        "kv.quota.rejections", "{write}", "Writes rejected by a quota, by quota (namespace or global) and namespace");

    private static readonly Counter<long> PurgeRuns = Meter.CreateCounter<long>(
        "kv.purge.runs", "{run}", "Purges of expired entries, by namespace");

    private static readonly Counter<long> PurgedEntries = Meter.CreateCounter<long>(
        "kv.purge.entries", "{entry}", "Expired entries removed by the purge, by namespace");

    private static readonly Counter<long> PurgedBytes = Meter.CreateCounter<long>(
        "kv.purge.bytes", "By", "Bytes freed by the purge, by namespace");

    // Counted where every provider's outbox publishes (IKvEventPublisher), so Redis's events are too.
    private static readonly Counter<long> OutboxPublished = Meter.CreateCounter<long>(
        "kv.outbox.published", "{event}", "Events the providers published from their outboxes (quota thresholds, expiries), by event type");

    private static readonly Gauge<long> NamespaceUsedBytes = Meter.CreateGauge<long>(
        "kv.namespace.usage", "By", "Bytes a namespace holds against its quota, as last seen by this worker");

    /// <summary>Records one answered request; <paramref name="reply"/> is the result or the <see cref="KvError"/> sent back.</summary>
    public static void RequestCompleted(KvOperation operation, string? ns, object reply, TimeSpan elapsed)
    {
        var outcome = reply is KvError error ? error.Error.Code : "ok";
        var tags = new TagList { { "kv.operation", operation.Name }, { "kv.outcome", outcome } };
        Operations.Add(1, tags);
        OperationDuration.Record(elapsed.TotalSeconds, tags);

        if (outcome is KvErrorCodes.NamespaceQuotaExceededError or KvErrorCodes.GlobalQuotaExceededError)
        {
            QuotaRejections.Add(1,
                new("kv.quota", outcome == KvErrorCodes.NamespaceQuotaExceededError ? "namespace" : "global"),
                new("kv.namespace", ns));
        }
        if (reply is KvUsageResult usage) NamespaceUsage(usage.Namespace, usage.UsedBytes);
        if (reply is KvPurgeResult purge)
            foreach (var expired in purge.Namespaces) PurgeCompleted(expired.Namespace, expired.Count, expired.BytesFreed);

        // MassTransit's consume span, when tracing is on: say what the request was about.
        Activity.Current?.SetTag("kv.namespace", ns).SetTag("kv.outcome", outcome);
    }

    /// <summary>A request taken after its caller's deadline, dropped unapplied: counted with the outcome <c>expired</c>.</summary>
    public static void RequestDropped(KvOperation operation) =>
        Operations.Add(1, new TagList { { "kv.operation", operation.Name }, { "kv.outcome", "expired" } });

    /// <summary>The purge removed <paramref name="entries"/> expired entries (<paramref name="bytes"/> bytes) from a namespace.</summary>
    public static void PurgeCompleted(string ns, long entries, long bytes)
    {
        var tag = new KeyValuePair<string, object?>("kv.namespace", ns);
        PurgeRuns.Add(1, tag);
        PurgedEntries.Add(entries, tag);
        PurgedBytes.Add(bytes, tag);
    }

    /// <summary>A provider published an event from its outbox (the broker confirmed it).</summary>
    public static void EventPublished(Type eventType) =>
        OutboxPublished.Add(1, new KeyValuePair<string, object?>("kv.event", eventType.Name));

    /// <summary>A namespace's usage as just read or computed (usage queries).</summary>
    public static void NamespaceUsage(string ns, long usedBytes) =>
        NamespaceUsedBytes.Record(usedBytes, new KeyValuePair<string, object?>("kv.namespace", ns));
}
