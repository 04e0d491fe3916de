using RabbitMQ.Client;

namespace KvWorker.Client;

/// <summary>How a <see cref="KvClient"/> connects and when it resends.</summary>
public sealed record KvClientOptions
{
    /// <summary>The connection's name, as RabbitMQ's management UI shows it.</summary>
    public string ClientName { get; init; } = "KvWorker.Client";

    /// <summary>
    /// How long <see cref="KvClient.ConnectAsync"/> may take, TCP, TLS and the AMQP handshake together;
    /// 30 s unless told otherwise. RabbitMQ's client bounds only the TCP connect, so a server that takes
    /// the connection and never answers (a hung broker, another service on the port) would hold it for ever.
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many times a call is sent again after a time-out, with the same <c>message_id</c>,
    /// so a mutation is still applied at most once. 0 (the default): never resend.
    /// </summary>
    public int RetriesOnTimeout { get; init; }

    /// <summary>The persona sent with every request that names none, as an agent runtime acting for one persona wants.</summary>
    public string? Persona { get; init; }

    /// <summary>The storage provider sent with every request that names none; null leaves the worker's default.</summary>
    public string? Provider { get; init; }
}

/// <summary>Per call: the request's identity and how long to wait for the reply.</summary>
public record KvCallOptions
{
    /// <summary>Thirty seconds, the time-out when none is given.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>A day, the longest time-out a call takes (waiting on a task allows some 49 days; no reply is worth more than a day).</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromDays(1);

    internal static readonly KvCallOptions Default = new();

    /// <summary>
    /// The request's identity (AMQP <c>message_id</c>); null gives the call a fresh one.
    /// Pass the <see cref="KvTimeoutException.MessageId"/> of a call that timed out to
    /// retry it: the worker applies a mutation once per identity and answers a retry
    /// with the first reply.
    /// </summary>
    public string? MessageId { get; init; }

    /// <summary>
    /// How long to wait for the reply, at most <see cref="MaxTimeout"/>. The request also carries it as its AMQP
    /// <c>expiration</c>, so RabbitMQ drops a request still queued when its caller
    /// has given up, rather than applying it later.
    /// </summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;
}

/// <summary>A low-level call's options: besides identity and time-out, the properties a test may want to vary.</summary>
public sealed record KvRawCallOptions : KvCallOptions
{
    internal static new readonly KvRawCallOptions Default = new();

    /// <summary>The AMQP <c>content_type</c>; <c>application/json</c> unless told otherwise, null sends none.</summary>
    public string? ContentType { get; init; } = KvClient.JsonContentType;

    /// <summary>
    /// The AMQP <c>user_id</c>; null sends the connection's user. RabbitMQ closes the
    /// client's channel when it is anybody else.
    /// </summary>
    public string? UserId { get; init; }

    /// <summary>False sends no <c>user_id</c> at all (the worker then judges the request as anonymous).</summary>
    public bool SendUserId { get; init; } = true;
}

/// <summary>A reply as it arrived: its body and its AMQP properties (<c>correlation_id</c>, <c>content_type</c>, ...).</summary>
public sealed record KvRawReply(byte[] Body, IReadOnlyBasicProperties Properties);
