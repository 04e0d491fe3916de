using System.Collections.Concurrent;
using KvWorker.Storage;

namespace KvWorker.Adapters.Conformance;

/// <summary>An event publisher that keeps what it is given, for tests to look at.</summary>
public sealed class RecordedEvents : IKvEventPublisher
{
    private readonly ConcurrentQueue<object> _events = new();

    public Task PublishAsync(object @event, CancellationToken cancellationToken)
    {
        _events.Enqueue(@event);
        return Task.CompletedTask;
    }

    /// <summary>The events of type <typeparamref name="T"/>, in the order they were published.</summary>
    public IReadOnlyList<T> All<T>() => [.. _events.OfType<T>()];
}
