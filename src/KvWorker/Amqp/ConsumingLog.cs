using System.Collections.Concurrent;
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
    private readonly ConcurrentDictionary<Uri, bool> _ready = new();

    public Task Ready(ReceiveEndpointReady ready)
    {
        // Only the operation queues count: the bus has a queue of its own too.
        var queue = ready.InputAddress.AbsolutePath.Split('/')[^1];
        if (!KvOperations.All.Any(operation => operation.Queue == queue)) return Task.CompletedTask;
        var wasReady = _ready.TryGetValue(ready.InputAddress, out var before) && before;
        _ready[ready.InputAddress] = true;
        if (!wasReady && _ready.Count(entry => entry.Value) == KvOperations.All.Count)
        {
            var rabbitMq = options.Value;
            logger.LogInformation("Connected to RabbitMQ ({Nodes}), virtual host {VirtualHost}; consuming {Queues} ({QueueType} queues)",
                string.Join(",", rabbitMq.Nodes().Select(node => $"{node.Host}:{node.Port}")), rabbitMq.VirtualHost,
                string.Join(", ", KvOperations.All.Select(operation => operation.Queue)), rabbitMq.QueueType.ToString().ToLowerInvariant());
        }
        return Task.CompletedTask;
    }

    public Task Faulted(ReceiveEndpointFaulted faulted)
    {
        if (_ready.TryUpdate(faulted.InputAddress, false, true))
            logger.LogWarning("Stopped consuming {Queue}, reconnecting: {Message}", faulted.InputAddress.AbsolutePath.TrimStart('/'),
                faulted.Exception?.Message);
        return Task.CompletedTask;
    }

    public Task Stopping(ReceiveEndpointStopping stopping) => Task.CompletedTask;

    /// <summary>A queue also stops without a fault when its broker node closes the connection: it logs again once back.</summary>
    public Task Completed(ReceiveEndpointCompleted completed)
    {
        _ready.TryUpdate(completed.InputAddress, false, true);
        return Task.CompletedTask;
    }
}
