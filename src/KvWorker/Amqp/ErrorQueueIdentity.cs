using MassTransit;
using MassTransit.Middleware.Rescue;
using RabbitMQ.Client;

namespace KvWorker.Amqp;

/// <summary>
/// A failed request as it should be moved to <c>&lt;queue&gt;_error</c>: without its
/// AMQP <c>user_id</c>. MassTransit copies the request's properties onto the copy
/// it publishes, and RabbitMQ refuses a user_id that is not the publishing
/// connection's user, so a failed request from any other identity would close the
/// worker's channel and be redelivered forever. The caller's identity is kept in
/// the <see cref="UserIdHeader"/> header, which a caller cannot set: its own is
/// dropped. The copy also loses the request's <c>expiration</c> (its caller's
/// time-out), so it stays in the error queue for inspection instead of expiring there.
/// </summary>
public sealed class ErrorQueueIdentity : RescueExceptionReceiveContext
{
    public const string UserIdHeader = "KV-User-Id";

    private readonly RabbitMqBasicConsumeContext _withoutUserId;

    private ErrorQueueIdentity(ExceptionReceiveContext context, RabbitMqBasicConsumeContext withoutUserId)
        : base(context, context.Exception) => _withoutUserId = withoutUserId;

    /// <summary>The context to hand on to the error transport.</summary>
    public static ExceptionReceiveContext ForErrorQueue(ExceptionReceiveContext context)
    {
        if (!context.TryGetPayload<RabbitMqBasicConsumeContext>(out var amqp)
            || !(amqp.Properties.IsUserIdPresent() || amqp.Properties.IsExpirationPresent()
                || amqp.Properties.Headers?.ContainsKey(UserIdHeader) == true))
            return context;
        var headers = new Dictionary<string, object?>(amqp.Properties.Headers ?? new Dictionary<string, object?>());
        // Only the broker-checked user_id may name the caller: a KV-User-Id the caller sent itself is not kept.
        headers.Remove(UserIdHeader);
        if (amqp.Properties.IsUserIdPresent()) headers[UserIdHeader] = amqp.Properties.UserId;
        var properties = new BasicProperties(amqp.Properties) { UserId = null, Expiration = null, Headers = headers };
        return new ErrorQueueIdentity(context, new Delivery(amqp, properties));
    }

    public override bool TryGetPayload<T>(out T payload) where T : class
    {
        if (typeof(T) == typeof(RabbitMqBasicConsumeContext))
        {
            payload = (T)_withoutUserId;
            return true;
        }
        return base.TryGetPayload(out payload!);
    }

    private sealed class Delivery(RabbitMqBasicConsumeContext delivery, IReadOnlyBasicProperties properties) : RabbitMqBasicConsumeContext
    {
        public string Exchange => delivery.Exchange;
        public string ConsumerTag => delivery.ConsumerTag;
        public ulong DeliveryTag => delivery.DeliveryTag;
        public IReadOnlyBasicProperties Properties => properties;
        public string? RoutingKey => delivery.RoutingKey;
    }
}
