using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Bench;

/// <summary>
/// A pipelined plain AMQP RPC client (RabbitMQ's RPC tutorial, no MassTransit):
/// JSON to the default exchange, replies on an exclusive queue matched by
/// correlation_id. Any number of calls may be outstanding at once. Every request
/// carries a fresh message_id (mutations are exactly-once by it, and that cost
/// belongs in the figures) and user_id equal to the connection's user.
/// </summary>
public sealed class RpcClient : ILoadTarget, IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(60);
    private static readonly byte[] ErrorPrefix = "{\"error\""u8.ToArray();

    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly string _replyQueue;
    private readonly string _user;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<string?>> _pending = new();
    private readonly SemaphoreSlim _publishGate = new(1, 1);
    private long _nextCorrelationId;

    private RpcClient(string name, IConnection connection, IChannel channel, string replyQueue, string user)
    {
        Name = name;
        _connection = connection;
        _channel = channel;
        _replyQueue = replyQueue;
        _user = user;
    }

    public string Name { get; }

    public static async Task<RpcClient> ConnectAsync(string name, Uri amqpUri, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory { Uri = amqpUri };
        var connection = await factory.CreateConnectionAsync(cancellationToken);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var replyQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken)).QueueName;
        var client = new RpcClient(name, connection, channel, replyQueue, factory.UserName);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            // The body is only valid inside this callback: decide here whether it is an error.
            var body = delivery.Body.Span;
            var error = body.StartsWith(ErrorPrefix) ? Encoding.UTF8.GetString(body) : null;
            if (client._pending.TryRemove(delivery.BasicProperties.CorrelationId ?? "", out var waiter))
                waiter.TrySetResult(error);
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(replyQueue, autoAck: true, consumer, cancellationToken);
        return client;
    }

    /// <summary>Sends one request and waits for its reply; returns the reply when it is an error, else null.</summary>
    public async Task<string?> CallAsync(Request request, CancellationToken cancellationToken)
    {
        var correlationId = Interlocked.Increment(ref _nextCorrelationId).ToString(CultureInfo.InvariantCulture);
        var waiter = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[correlationId] = waiter;
        var properties = new BasicProperties
        {
            ContentType = "application/json",
            CorrelationId = correlationId,
            ReplyTo = _replyQueue,
            MessageId = Guid.NewGuid().ToString("N"),
            UserId = _user,
        };
        var body = Workload.RequestBody(request);
        await _publishGate.WaitAsync(cancellationToken);
        try
        {
            await _channel.BasicPublishAsync("", Workload.Queue(request.Operation), mandatory: false, properties, body, cancellationToken);
        }
        finally
        {
            _publishGate.Release();
        }
        try
        {
            return await waiter.Task.WaitAsync(CallTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            _pending.TryRemove(correlationId, out _);
            throw new TimeoutException($"{Name}: no reply to {request.Operation} on {request.Namespace}/{request.Key} within {CallTimeout.TotalSeconds} s");
        }
    }

    /// <summary>Waits until every operation queue has at least <paramref name="consumers"/> consumers (the replicas are ready).</summary>
    public static async Task WaitForConsumersAsync(Uri amqpUri, int consumers, Func<string> diagnostics, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        await using var connection = await new ConnectionFactory { Uri = amqpUri }.CreateConnectionAsync(cancellationToken);
        foreach (var queue in Workload.Operations.Select(Workload.Queue))
        {
            while (await ConsumerCountAsync(connection, queue, cancellationToken) < consumers)
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"{queue} in {amqpUri.AbsolutePath} did not reach {consumers} consumers within 90 s.\n{diagnostics()}");
                await Task.Delay(250, cancellationToken);
            }
        }
    }

    private static async Task<uint> ConsumerCountAsync(IConnection connection, string queue, CancellationToken cancellationToken)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue, cancellationToken)).ConsumerCount;
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            return 0; // not declared yet
        }
    }

    /// <summary>The broker's version, as it announces itself on connecting.</summary>
    public string ServerVersion =>
        _connection.ServerProperties?.TryGetValue("version", out var version) == true && version is byte[] bytes
            ? Encoding.UTF8.GetString(bytes)
            : "unknown";

    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await _connection.DisposeAsync();
        _publishGate.Dispose();
    }
}
