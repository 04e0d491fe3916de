using System.Text;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace KvWorker.Tests.Integration;

/// <summary>A request taken after its caller stopped waiting is dropped: not applied, not answered.</summary>
[Collection(WorkerCollection.Name)]
public sealed class DeadlineTests(WorkerFixture worker)
{
    private static string NewNamespace() => "deadline-" + Guid.NewGuid().ToString("N");

    /// <summary>Publishes an increment with these properties and waits a moment for a reply; returns it, or null.</summary>
    private async Task<string?> IncrementAsync(string ns, BasicProperties properties, string? contentType = null, string? body = null)
    {
        await using var connection = await new ConnectionFactory { Uri = worker.AmqpUri }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var replyQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true)).QueueName;
        var reply = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            reply.TrySetResult(Encoding.UTF8.GetString(delivery.Body.Span));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(replyQueue, autoAck: true, consumer);
        properties.ReplyTo = replyQueue;
        properties.CorrelationId = "1";
        properties.UserId = worker.BrokerUser.User;
        properties.ContentType = contentType ?? "application/json";
        await channel.BasicPublishAsync("", KvOperations.Increment.Queue, false, properties,
            Encoding.UTF8.GetBytes(body ?? $$"""{"namespace":"{{ns}}","key":"c"}"""));
        var replied = await Task.WhenAny(reply.Task, Task.Delay(TimeSpan.FromSeconds(3)));
        return replied == reply.Task ? await reply.Task : null;
    }

    private async Task<bool> CountedAsync(string ns)
    {
        await using var client = await worker.RawClientAsync();
        return (await client.CallAsync(KvOperations.Get.Queue, new { @namespace = ns, key = "c" })).GetProperty("found").GetBoolean();
    }

    private static long UnixMilliseconds(TimeSpan fromNow) => (DateTimeOffset.UtcNow + fromNow).ToUnixTimeMilliseconds();

    [Fact]
    public async Task A_request_whose_kv_deadline_has_passed_is_neither_applied_nor_answered()
    {
        var ns = NewNamespace();

        var reply = await IncrementAsync(ns, new BasicProperties
        {
            MessageId = Guid.NewGuid().ToString(),
            Headers = new Dictionary<string, object?> { [KvHeaders.Deadline] = UnixMilliseconds(TimeSpan.FromSeconds(-1)) },
        });

        Assert.Null(reply);
        Assert.False(await CountedAsync(ns));
    }

    [Fact]
    public async Task A_request_within_its_deadline_is_applied_and_answered()
    {
        var ns = NewNamespace();

        var reply = await IncrementAsync(ns, new BasicProperties
        {
            MessageId = Guid.NewGuid().ToString(),
            Expiration = "30000",
            Headers = new Dictionary<string, object?> { [KvHeaders.Deadline] = UnixMilliseconds(TimeSpan.FromSeconds(30)) },
        });

        Assert.NotNull(reply);
        Assert.True(await CountedAsync(ns));
    }

    [Fact]
    public async Task A_deadline_no_calendar_holds_is_no_deadline_and_the_request_is_answered()
    {
        var (microseconds, timestampInMilliseconds, negative) = (NewNamespace(), NewNamespace(), NewNamespace());

        var replies = new[]
        {
            await IncrementAsync(microseconds, new BasicProperties
            {
                Headers = new Dictionary<string, object?> { [KvHeaders.Deadline] = UnixMilliseconds(TimeSpan.FromSeconds(30)) * 1000 },
            }),
            await IncrementAsync(timestampInMilliseconds, new BasicProperties
            {
                Timestamp = new AmqpTimestamp(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()),
                Expiration = "30000",
            }),
            await IncrementAsync(negative, new BasicProperties { Headers = new Dictionary<string, object?> { [KvHeaders.Deadline] = long.MinValue } }),
        };

        Assert.All(replies, reply => Assert.Contains("\"value\":1", reply, StringComparison.Ordinal));
        Assert.True(await CountedAsync(microseconds) && await CountedAsync(timestampInMilliseconds) && await CountedAsync(negative));
    }

    [Fact]
    public async Task Without_the_header_the_timestamp_and_expiration_are_the_deadline()
    {
        var ns = NewNamespace();

        var reply = await IncrementAsync(ns, new BasicProperties
        {
            MessageId = Guid.NewGuid().ToString(),
            Timestamp = new AmqpTimestamp(DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds()),
            Expiration = "30000",
        });

        Assert.Null(reply);
        Assert.False(await CountedAsync(ns));
    }

    [Fact]
    public async Task A_masstransit_request_past_its_expiration_time_is_dropped()
    {
        var ns = NewNamespace();
        var envelope = $$$"""
            {"messageId":"{{{Guid.NewGuid()}}}","requestId":"{{{Guid.NewGuid()}}}",
             "messageType":["urn:message:KvWorker.Contracts:KvIncrement"],
             "expirationTime":"{{{DateTime.UtcNow.AddSeconds(-5):O}}}",
             "message":{"namespace":"{{{ns}}}","key":"c"}}
            """;

        var reply = await IncrementAsync(ns, new BasicProperties { MessageId = Guid.NewGuid().ToString() },
            "application/vnd.masstransit+json", envelope);

        Assert.Null(reply);
        Assert.False(await CountedAsync(ns));
    }
}
