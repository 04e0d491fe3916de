using System.Diagnostics.Metrics;

namespace KvWorker.Postgres;

/// <summary>
/// The postgres provider's instruments, on a meter of its own (<c>KvWorker.Postgres</c>) so that
/// the provider needs no reference to the worker; the worker's telemetry subscribes to it.
/// </summary>
public static class PostgresMetrics
{
    public const string MeterName = "KvWorker.Postgres";

    private static readonly Meter Meter = new(MeterName, typeof(PostgresMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Histogram<int> GroupCommands = Meter.CreateHistogram<int>(
        "kv.group.commands", "{command}", "Commands per group commit transaction",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });

    private static long _outboxBacklog = -1;

    private static readonly ObservableGauge<long> OutboxBacklogGauge = Meter.CreateObservableGauge(
        "kv.outbox.backlog",
        () => Volatile.Read(ref _outboxBacklog) is var backlog and >= 0 ? [new Measurement<long>(backlog)] : Array.Empty<Measurement<long>>(),
        "{event}", "Events waiting in kv_outbox, as last counted by this worker (every replica counts the same table)");

    /// <summary>A group of <paramref name="commands"/> commands ran in one transaction.</summary>
    internal static void GroupExecuted(int commands) => GroupCommands.Record(commands);

    /// <summary>Whether anyone collects the backlog gauge, so that counting the outbox is worth a query.</summary>
    internal static bool OutboxBacklogCollected => OutboxBacklogGauge.Enabled;

    internal static void OutboxBacklog(long waiting) => Volatile.Write(ref _outboxBacklog, waiting);
}
