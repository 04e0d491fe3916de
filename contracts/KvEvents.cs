namespace KvWorker.Contracts;

/// <summary>
/// The events the worker publishes, each as plain JSON on a durable fanout
/// exchange named like its record, so any AMQP subscriber can bind a queue.
/// </summary>
public static class KvEvents
{
    public static IReadOnlyList<Type> All { get; } =
        [typeof(NamespaceQuotaExceeded), typeof(GlobalQuotaExceeded), typeof(NamespaceQuotaThresholdReached), typeof(KvEntriesExpired)];

    /// <summary>The exchange an event is published on: its record's name.</summary>
    public static string Exchange(Type eventType) => eventType.Name;

    public static IReadOnlyList<string> Exchanges { get; } = [.. All.Select(Exchange)];

    /// <summary>The event record named <paramref name="name"/>, or null.</summary>
    public static Type? Find(string name) => All.FirstOrDefault(type => type.Name == name);
}
