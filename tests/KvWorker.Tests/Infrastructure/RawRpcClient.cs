using System.Collections.Concurrent;
using System.Text;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// A plain AMQP client following RabbitMQ's RPC tutorial: JSON body to the
/// default exchange, reply_to an exclusive queue, matched by correlation_id.
/// No MassTransit involved. Requests carry the connection's user as AMQP
/// user_id (the identity the persona policy checks) unless told not to.
/// </summary>
public sealed class RawRpcClient : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly string _replyQueue;
    private readonly string? _userId;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<(string Body, IReadOnlyBasicProperties Properties)>> _pending = new();
    private readonly SemaphoreSlim _publishGate = new(1, 1);

    private RawRpcClient(IConnection connection, IChannel channel, string replyQueue, string? userId)
    {
        _connection = connection;
        _channel = channel;
        _replyQueue = replyQueue;
        _userId = userId;
    }

    public static async Task<RawRpcClient> ConnectAsync(Uri amqpUri, bool sendUserId = true)
    {
        var factory = new ConnectionFactory { Uri = amqpUri };
        var connection = await factory.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync();
        var replyQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true)).QueueName;
        var client = new RawRpcClient(connection, channel, replyQueue, sendUserId ? factory.UserName : null);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            var correlationId = delivery.BasicProperties.CorrelationId ?? "";
            if (client._pending.TryRemove(correlationId, out var waiter))
                waiter.TrySetResult((Encoding.UTF8.GetString(delivery.Body.Span), delivery.BasicProperties));
            else
                client.Unmatched.Add(Encoding.UTF8.GetString(delivery.Body.Span));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(replyQueue, autoAck: true, consumer);
        return client;
    }

    /// <summary>Replies that matched no pending request (duplicates, or replies after a time-out).</summary>
    public ConcurrentBag<string> Unmatched { get; } = [];

    public async Task<JsonElement> CallAsync(string queue, object request, string? messageId = null, TimeSpan? timeout = null) =>
        await CallRawAsync(queue, JsonSerializer.SerializeToUtf8Bytes(request), messageId, timeout);

    public async Task<JsonElement> CallRawAsync(string queue, byte[] body, string? messageId = null, TimeSpan? timeout = null,
        string? contentType = "application/json")
    {
        var (text, _) = await CallWithPropertiesAsync(queue, body, messageId, timeout, contentType);
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    public async Task<(string Body, IReadOnlyBasicProperties Properties)> CallWithPropertiesAsync(
        string queue, byte[] body, string? messageId = null, TimeSpan? timeout = null, string? contentType = "application/json")
    {
        var correlationId = Guid.NewGuid().ToString("N");
        var waiter = new TaskCompletionSource<(string, IReadOnlyBasicProperties)>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[correlationId] = waiter;
        var properties = new BasicProperties
        {
            ContentType = contentType,
            CorrelationId = correlationId,
            ReplyTo = _replyQueue,
            MessageId = messageId ?? Guid.NewGuid().ToString(),
            UserId = _userId,
        };
        await _publishGate.WaitAsync();
        try
        {
            await _channel.BasicPublishAsync("", queue, mandatory: false, properties, body);
        }
        finally
        {
            _publishGate.Release();
        }
        return await waiter.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
    }

    public async Task<uint> ConsumerCountAsync(string queue) =>
        (await _channel.QueueDeclarePassiveAsync(queue)).ConsumerCount;

    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
