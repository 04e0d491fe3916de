using MassTransit;
using MassTransit.RabbitMqTransport;

namespace KvWorker.Amqp;

/// <summary>
/// The AMQP properties of a request that KvWorker acts on, read once per message:
/// its identity (<c>message_id</c>), its caller (<c>user_id</c>, which RabbitMQ
/// refuses unless it is the publishing connection's user) and, for a plain AMQP
/// client, where to reply (<c>reply_to</c>, <c>correlation_id</c>).
/// </summary>
public sealed record AmqpProperties(string? MessageId, string? UserId, string? ReplyTo, string? CorrelationId, bool IsPlainRpc)
{
    public static readonly AmqpProperties None = new(null, null, null, null, false);

    public static AmqpProperties From(ReceiveContext context)
    {
        if (!context.TryGetPayload<RabbitMqBasicConsumeContext>(out var amqp)) return None;
        var properties = amqp.Properties;
        return new AmqpProperties(
            NullIfEmpty(properties.MessageId),
            NullIfEmpty(properties.UserId),
            NullIfEmpty(properties.ReplyTo),
            properties.CorrelationId,
            // A plain AMQP request names reply_to, and has neither a MassTransit envelope nor response address.
            IsPlainRpc: !string.IsNullOrEmpty(properties.ReplyTo)
                && context.ContentType?.MediaType != MassTransitEnvelope.ContentType
                && !context.TransportHeaders.TryGetHeader(MessageHeaders.ResponseAddress, out _));
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
