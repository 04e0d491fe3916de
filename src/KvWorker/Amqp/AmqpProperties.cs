using MassTransit;
using MassTransit.RabbitMqTransport;

namespace KvWorker.Amqp;

/// <summary>
/// The AMQP properties of a request that KvWorker acts on, read once per message:
/// its identity (<c>message_id</c>), its caller (<c>user_id</c>, which RabbitMQ
/// refuses unless it is the publishing connection's user) and, for a plain AMQP
/// client, where to reply (<c>reply_to</c>, <c>correlation_id</c>), and when its
/// caller stops waiting (<see cref="Deadline"/>).
/// </summary>
public sealed record AmqpProperties(string? MessageId, string? UserId, string? ReplyTo, string? CorrelationId, bool IsPlainRpc, DateTime? Deadline)
{
    public static readonly AmqpProperties None = new(null, null, null, null, false, null);

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
                && !context.TransportHeaders.TryGetHeader(MessageHeaders.ResponseAddress, out _),
            Deadline: DeadlineOf(properties));
    }

    /// <summary>
    /// The caller's deadline: the <c>kv-deadline</c> header (Unix milliseconds), else the AMQP
    /// <c>timestamp</c> plus <c>expiration</c> (the timestamp has whole seconds only, so this
    /// errs early by up to a second, never late); null when the request carries neither, or a
    /// time no calendar holds (a timestamp in milliseconds, say), which is no deadline either.
    /// </summary>
    private static DateTime? DeadlineOf(RabbitMQ.Client.IReadOnlyBasicProperties properties)
    {
        if (properties.Headers?.TryGetValue(Contracts.KvHeaders.Deadline, out var header) == true && Milliseconds(header) is { } deadline)
            return UnixTime(deadline);
        if (properties.IsTimestampPresent() && properties.Timestamp.UnixTime > 0
            && long.TryParse(properties.Expiration, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var expiration))
            return UnixTime(properties.Timestamp.UnixTime * 1000.0 + expiration);
        return null;
    }

    private static readonly double LatestUnixMilliseconds = (DateTime.MaxValue - DateTime.UnixEpoch).TotalMilliseconds - 1;
    private static readonly double EarliestUnixMilliseconds = (DateTime.MinValue - DateTime.UnixEpoch).TotalMilliseconds + 1;

    private static DateTime? UnixTime(double milliseconds) =>
        milliseconds >= EarliestUnixMilliseconds && milliseconds <= LatestUnixMilliseconds
            ? DateTime.UnixEpoch.AddMilliseconds(milliseconds)
            : null;

    private static long? Milliseconds(object? header) => header switch
    {
        long value => value,
        int value => value,
        byte[] text when long.TryParse(System.Text.Encoding.UTF8.GetString(text), System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out var value) => value,
        _ => null,
    };

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
