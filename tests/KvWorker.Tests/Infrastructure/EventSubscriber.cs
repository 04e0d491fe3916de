using System.Collections.Concurrent;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// A plain AMQP subscriber, as any-language clients write one: an exclusive
/// queue bound to each event's fanout exchange, collecting the JSON bodies.
/// </summary>
public sealed class EventSubscriber : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly ConcurrentQueue<(string Event, string? ContentType, bool OneLine, JsonElement Body)> _received = new();

    private EventSubscriber(IConnection connection, IChannel channel)
    {
        _connection = connection;
        _channel = channel;
    }

    public static async Task<EventSubscriber> ConnectAsync(Uri amqpUri)
    {
        var connection = await new ConnectionFactory { Uri = amqpUri }.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync();
        var subscriber = new EventSubscriber(connection, channel);
        var queue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true)).QueueName;
        foreach (var exchange in KvWorker.Contracts.KvEvents.Exchanges)
        {
            await channel.ExchangeDeclareAsync(exchange, ExchangeType.Fanout, durable: true, autoDelete: false);
            await channel.QueueBindAsync(queue, exchange, routingKey: "");
        }
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            using var document = JsonDocument.Parse(delivery.Body);
            subscriber._received.Enqueue((delivery.Exchange, delivery.BasicProperties.ContentType, !delivery.Body.Span.Contains((byte)'\n'), document.RootElement.Clone()));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(queue, autoAck: true, consumer);
        return subscriber;
    }

    /// <summary>The bodies of one event type received so far for a namespace, in arrival order.</summary>
    public List<JsonElement> Events(string eventType, string ns)
    {
        var events = _received.Where(e => e.Event == eventType && e.Body.GetProperty("namespace").GetString() == ns).ToList();
        Assert.All(events, e => Assert.Equal("application/json", e.ContentType));
        Assert.All(events, e => Assert.True(e.OneLine, $"not compact JSON: {e.Body}"));
        return events.Select(e => e.Body).ToList();
    }

    /// <summary>Waits until the condition holds, failing with what was received if it never does.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"timed out waiting for {what}; received: {string.Join("\n", _received.Select(e => $"{e.Event} {e.Body}"))}");
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
