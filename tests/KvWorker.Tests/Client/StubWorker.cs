using System.Collections.Concurrent;
using System.Text;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace KvWorker.Tests.Client;

/// <summary>
/// A stand-in for the worker on <c>kv_get</c> in a RabbitMQ virtual host of its own,
/// for what the real worker cannot be made to do on demand: answer with any error
/// code, stay silent, answer only a request's second delivery, or answer with what no worker
/// sends. It answers by key: <see cref="Silent"/> never, <see cref="SecondDelivery"/> only when
/// its message_id comes again, <see cref="NotJson"/> with the bytes "hello", <see cref="WrongShape"/>
/// with JSON that is no kv_get result, any other key with an error reply whose code is the key.
/// </summary>
public sealed class StubWorker : IAsyncLifetime
{
    public const string Silent = "silent";
    public const string SecondDelivery = "second-delivery";
    public const string NotJson = "not-json";
    public const string WrongShape = "wrong-shape";
    public const long CurrentVersion = 7;

    private readonly string _virtualHost = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
    private IConnection _connection = null!;

    public Uri AmqpUri { get; private set; } = null!;

    /// <summary>The properties of every request received, in order.</summary>
    public ConcurrentQueue<IReadOnlyBasicProperties> Requests { get; } = new();

    public async Task InitializeAsync()
    {
        await TestServers.CreateVirtualHostAsync(_virtualHost);
        AmqpUri = new UriBuilder(await TestServers.RabbitMqAsync()) { Path = "/" + _virtualHost }.Uri;
        _connection = await new ConnectionFactory { Uri = AmqpUri }.CreateConnectionAsync();
        var channel = await _connection.CreateChannelAsync();
        await channel.QueueDeclareAsync(KvOperations.Get.Queue, durable: false, exclusive: false, autoDelete: false);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            var properties = delivery.BasicProperties;
            var seenBefore = Requests.Any(request => request.MessageId == properties.MessageId);
            Requests.Enqueue(properties);
            var key = JsonDocument.Parse(delivery.Body).RootElement.GetProperty("key").GetString()!;
            var reply = key switch
            {
                Silent => null,
                SecondDelivery => seenBefore ? $$"""{"namespace":"n","key":"{{key}}","found":false}""" : null,
                NotJson => "hello",
                WrongShape => "\"hello\"",
                _ => $$$"""{"error":{"code":"{{{key}}}","message":"stub says {{{key}}}","current_version":{{{CurrentVersion}}}}}""",
            };
            if (reply is null) return;
            await channel.BasicPublishAsync("", properties.ReplyTo!, mandatory: false,
                new BasicProperties { CorrelationId = properties.CorrelationId, ContentType = "application/json" }, Encoding.UTF8.GetBytes(reply));
        };
        await channel.BasicConsumeAsync(KvOperations.Get.Queue, autoAck: true, consumer);
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        await TestServers.DeleteVirtualHostAsync(_virtualHost);
    }
}
