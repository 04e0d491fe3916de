using KvWorker.Configuration;
using KvWorker.Contracts;
using MassTransit;
using MassTransit.RabbitMqTransport;
using MassTransit.RabbitMqTransport.Configuration;
using MassTransit.Transports;
using Microsoft.Extensions.Options;
using RabbitMQ.Client.Exceptions;
using Serilog.Events;

namespace KvWorker.Amqp;

/// <summary>
/// Says in the log when the worker is connected and consuming: one line once every
/// operation queue is ready, a warning when a queue stops (the broker is gone),
/// and the line again once all are back. A queue that cannot start consuming (a virtual
/// host that does not exist or the user may not use, a broker that cannot be reached) is
/// logged as a warning, at most once a minute until every queue is ready: MassTransit retries
/// it every few seconds for each queue and, for a refused virtual host, logs nothing an operator would see.
/// </summary>
/// <remarks>
/// The bus is resolved when the line is due, not injected: this observer is created while the bus is built.
/// </remarks>
public sealed class ConsumingLog(IOptions<RabbitMqOptions> options, IServiceProvider services, ILogger<ConsumingLog> logger)
    : IReceiveEndpointObserver
{
    // Endpoints become ready on several threads at once: the check that all are ready happens
    // under one lock, or two endpoints finishing together log the line twice.
    private readonly HashSet<Uri> _ready = [];
    private readonly Lock _gate = new();
    // When a queue that could not start was last logged: every queue retries, every few seconds.
    private static readonly TimeSpan FailureLogInterval = TimeSpan.FromMinutes(1);
    private DateTime _failureLogged = DateTime.MinValue;

    public async Task Ready(ReceiveEndpointReady ready)
    {
        // Only the operation queues count: the bus has a queue of its own too.
        var queue = ready.InputAddress.AbsolutePath.Split('/')[^1];
        if (!KvOperations.All.Any(operation => operation.Queue == queue)) return;
        lock (_gate)
        {
            if (!_ready.Add(ready.InputAddress) || _ready.Count != KvOperations.All.Count) return;
            _failureLogged = DateTime.MinValue;
        }
        string node;
        try
        {
            node = await ConnectedNodeAsync();
        }
        catch (Exception ex) when (ex is RabbitMqConnectionException or OperationCanceledException)
        {
            // The connection went away meanwhile: its queues stop, and the line comes once they are back.
            logger.LogWarning(ex, "Consuming every queue, but the connection to RabbitMQ went away before its node could be read");
            return;
        }
        var rabbitMq = options.Value;
        logger.LogInformation("Connected to RabbitMQ ({Node}), virtual host {VirtualHost}; consuming {Queues} ({QueueType} queues)",
            node, rabbitMq.VirtualHost,
            string.Join(", ", KvOperations.All.Select(operation => operation.Queue)), rabbitMq.QueueType.ToString().ToLowerInvariant());
    }

    /// <summary>
    /// The node of the bus's connection, as <c>host:port</c>: of a cluster's nodes, the one it
    /// reached. Every queue is consumed on that one connection.
    /// </summary>
    private async Task<string> ConnectedNodeAsync()
    {
        var host = (IRabbitMqHostConfiguration)services.GetRequiredService<IBusInstance>().HostConfiguration;
        string? node = null;
        // The connection is up (its queues just became ready); should it drop now, the supervisor
        // would wait to connect again: not for long.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await host.ConnectionContextSupervisor.Send(Pipe.Execute<ConnectionContext>(context =>
            node = $"{context.Connection.Endpoint.HostName}:{context.Connection.Endpoint.Port}"), timeout.Token);
        return node!;
    }

    public Task Faulted(ReceiveEndpointFaulted faulted)
    {
        if (Stopped(faulted.InputAddress))
            logger.LogWarning("Stopped consuming {Queue}, reconnecting: {Message}", faulted.InputAddress.AbsolutePath.TrimStart('/'),
                faulted.Exception?.Message);
        else if (FailureDueForLog())
        {
            var rabbitMq = options.Value;
            logger.LogWarning("Cannot consume from RabbitMQ ({Nodes}), virtual host {VirtualHost}; retrying: {Reason}",
                string.Join(", ", rabbitMq.Nodes().Select(node => $"{node.Host}:{node.Port}")), rabbitMq.VirtualHost,
                faulted.Exception?.GetBaseException().Message);
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// MassTransit's warning for each failed attempt to reach RabbitMQ, a stack trace several times in
    /// a few seconds while the broker is down: the failure to consume says so once a minute instead.
    /// </summary>
    public static bool IsUnreachableBrokerRetry(LogEvent logEvent) =>
        logEvent is { Level: <= LogEventLevel.Warning, Exception: BrokerUnreachableException }
        && Serilog.Filters.Matching.FromSource("MassTransit")(logEvent);

    /// <summary>
    /// MassTransit's warning that it could not stop a bus that never started: printed after every
    /// failed start-up (whose own line says why) and on a stop before RabbitMQ was ever reached.
    /// </summary>
    public static bool IsStopOfABusNeverStarted(LogEvent logEvent) =>
        logEvent.Level == LogEventLevel.Warning
        && logEvent.MessageTemplate.Text == "Failed to stop bus: {Address} ({Reason})"
        && logEvent.Properties.TryGetValue("Reason", out var reason) && reason is ScalarValue { Value: "Not Started" };

    /// <summary>True when no failure to start consuming was logged within the last <see cref="FailureLogInterval"/>.</summary>
    private bool FailureDueForLog()
    {
        lock (_gate)
        {
            if (DateTime.UtcNow - _failureLogged < FailureLogInterval) return false;
            _failureLogged = DateTime.UtcNow;
            return true;
        }
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
