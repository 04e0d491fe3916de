using System.Text.Json;
using KvWorker.Contracts;
using MassTransit;
using MassTransit.RabbitMqTransport;
using RabbitMQ.Client;

namespace KvWorker.Amqp;

/// <summary>
/// Replies to a request, whichever kind of client sent it. A plain AMQP client
/// (RabbitMQ's RPC pattern) gets a plain JSON body published to the default
/// exchange with its <c>reply_to</c> as routing key and its <c>correlation_id</c>,
/// on the channel the request came in on: MassTransit itself ignores a bare
/// <c>reply_to</c>, so this closes that gap. A MassTransit request client gets
/// a response through MassTransit.
/// </summary>
public static class AmqpReply
{
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.General)
    {
        MaxDepth = KvJsonDepth.MaxMessage,
        // Readable messages: only what JSON requires is escaped (\u0000 still is).
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Sends <paramref name="reply"/> to the request's reply address; a request without one is fire-and-forget.</summary>
    public static Task SendAsync(ConsumeContext context, AmqpProperties amqp, object reply)
    {
        // Without a MassTransit response address, reply_to is the only address there is.
        if (amqp.IsPlainRpc || context.ResponseAddress is null)
            return PublishAsync(context.ReceiveContext, amqp, reply, context.CancellationToken);
        return context.RespondAsync(reply);
    }

    /// <summary>Publishes a plain JSON reply to <c>reply_to</c>, when the request names one.</summary>
    public static async Task PublishAsync(ReceiveContext context, AmqpProperties amqp, object reply, CancellationToken cancellationToken)
    {
        if (amqp.ReplyTo is null) return;
        if (!context.TryGetPayload<ChannelContext>(out var channel))
            throw new InvalidOperationException("the RabbitMQ channel of the request is not available to reply on");

        var properties = new BasicProperties
        {
            ContentType = "application/json",
            CorrelationId = amqp.CorrelationId,
            DeliveryMode = DeliveryModes.Transient,
        };
        var body = JsonSerializer.SerializeToUtf8Bytes(reply, reply.GetType(), JsonOptions);
        await channel.BasicPublishAsync("", amqp.ReplyTo, false, properties, body, true, cancellationToken);
    }
}
