using KvWorker.Contracts;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace KvWorker.Bench;

/// <summary>
/// Baseline (a0): what RabbitMQ itself allows. A RabbitMQ.Client consumer on every
/// operation's queue that answers each request with its own body, on <c>reply_to</c>
/// with its <c>correlation_id</c>, acknowledging after the reply as the worker does,
/// with the worker's prefetch. No MassTransit, no database. Runs as its own process
/// (<c>KvWorker.Bench raw-echo AMQP_URI PREFETCH</c>) until it is stopped.
/// </summary>
public static class RawEchoServer
{
    public const string Argument = "raw-echo";

    public static async Task RunAsync(string[] args)
    {
        var (uri, prefetch) = (new Uri(args[0]), ushort.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
        await using var connection = await new ConnectionFactory { Uri = uri, ClientProvidedName = "kv-bench-raw-echo" }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        await channel.BasicQosAsync(0, prefetch, global: false);
        foreach (var operation in KvOperations.All)
        {
            await channel.QueueDeclareAsync(operation.Queue, durable: true, exclusive: false, autoDelete: false);
            var consumer = new AsyncEventingBasicConsumer(channel);
            consumer.ReceivedAsync += async (_, delivery) =>
            {
                var request = delivery.BasicProperties;
                if (!string.IsNullOrEmpty(request.ReplyTo))
                {
                    var reply = new BasicProperties { ContentType = "application/json", CorrelationId = request.CorrelationId };
                    await channel.BasicPublishAsync("", request.ReplyTo, false, reply, delivery.Body);
                }
                await channel.BasicAckAsync(delivery.DeliveryTag, multiple: false);
            };
            await channel.BasicConsumeAsync(operation.Queue, autoAck: false, consumer);
        }
        using var stop = new CancellationTokenSource();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        await Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { });
    }
}
