using KvWorker.Configuration;
using KvWorker.Contracts;
using MassTransit;
using Microsoft.Extensions.Options;

namespace KvWorker.Amqp;

/// <summary>
/// Says in the log when the worker is connected and consuming: one line once every
/// operation queue is ready, a warning when a queue stops (the broker is gone),
/// and the line again once all are back.
/// </summary>
public sealed class ConsumingLog(IOptions<RabbitMqOptions> options, ILogger<ConsumingLog> logger) : IReceiveEndpointObserver
{
    // Endpoints become ready on several threads at once: the check that all are ready and
    // the line it logs happen under one lock, or two endpoints finishing together log it twice.
    private readonly HashSet<Uri> _ready = [];
    private readonly Lock _gate = new();

    public Task Ready(ReceiveEndpointReady ready)
    {
        // Only the operation queues count: the bus has a queue of its own too.
        var queue = ready.InputAddress.AbsolutePath.Split('/')[^1];
        if (!KvOperations.All.Any(operation => operation.Queue == queue)) return Task.CompletedTask;
        lock (_gate)
        {
            if (!_ready.Add(ready.InputAddress) || _ready.Count != KvOperations.All.Count) return Task.CompletedTask;

            var rabbitMq = options.Value;
            logger.LogInformation("Connected to RabbitMQ ({Nodes}), virtual host {VirtualHost}; consuming {Queues} ({QueueType} queues)",
                string.Join(",", rabbitMq.Nodes().Select(node => $"{node.Host}:{node.Port}")), rabbitMq.VirtualHost,
                string.Join(", ", KvOperations.All.Select(operation => operation.Queue)), rabbitMq.QueueType.ToString().ToLowerInvariant());
        }
        return Task.CompletedTask;
    }

    public Task Faulted(ReceiveEndpointFaulted faulted)
    {
        if (Stopped(faulted.InputAddress))
            logger.LogWarning("Stopped consuming {Queue}, reconnecting: {Message}", faulted.InputAddress.AbsolutePath.TrimStart('/'),
                faulted.Exception?.Message);
        return Task.CompletedTask;
    }

    public Task Stopping(ReceiveEndpointStopping stopping) => Task.CompletedTask;

    /// <summary>A queue also stops without a fault when its broker node closes the connection: it logs again once back.</summary>
    public Task Completed(ReceiveEndpointCompleted completed)
    {
        Stopped(completed.InputAddress);
        return Task.CompletedTask;
    }

    /// <summary>Marks a ready queue as stopped; false when it was not ready.</summary>
    private bool Stopped(Uri inputAddress)
    {
        lock (_gate) return _ready.Remove(inputAddress);
    }
}
