using System.Text.Json;
using MassTransit;
using MassTransit.RabbitMqTransport;
using RabbitMQ.Client;

namespace KvWorker.Messaging;

/// <summary>
/// Replies to plain AMQP clients (RabbitMQ's RPC pattern): a plain JSON body
/// published to the default exchange with the request's <c>reply_to</c> as
/// routing key and its <c>correlation_id</c>. MassTransit itself ignores a bare
/// <c>reply_to</c>, so this closes that gap on the channel the request came in on.
/// </summary>
public static class AmqpReply
{
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.General)
    {
        // Readable messages: only what JSON requires is escaped (\u0000 still is).
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The request's AMQP properties, when it came through RabbitMQ.</summary>
    public static IReadOnlyBasicProperties? Properties(ReceiveContext context) =>
        context.TryGetPayload<RabbitMqBasicConsumeContext>(out var amqp) ? amqp.Properties : null;

    /// <summary>
    /// True for a plain AMQP request that names a reply queue: no MassTransit
    /// envelope and no MassTransit response address, only <c>reply_to</c>.
    /// </summary>
    public static bool IsWanted(ReceiveContext context) =>
        !string.IsNullOrEmpty(Properties(context)?.ReplyTo)
        && context.ContentType?.MediaType != MassTransitEnvelope.ContentType
        && !context.TransportHeaders.TryGetHeader(MessageHeaders.ResponseAddress, out _);

    public static async Task SendAsync<T>(ReceiveContext context, T reply, CancellationToken cancellationToken)
    {
        var request = Properties(context);
        if (string.IsNullOrEmpty(request?.ReplyTo)) return;
        if (!context.TryGetPayload<ChannelContext>(out var channel))
            throw new InvalidOperationException("the RabbitMQ channel of the request is not available to reply on");

        var properties = new BasicProperties
        {
            ContentType = "application/json",
            CorrelationId = request.CorrelationId,
            DeliveryMode = DeliveryModes.Transient,
        };
        var body = JsonSerializer.SerializeToUtf8Bytes(reply, JsonOptions);
        await channel.BasicPublishAsync("", request.ReplyTo, false, properties, body, true, cancellationToken);
    }
}
