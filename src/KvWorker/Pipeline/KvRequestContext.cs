using KvWorker.Amqp;
using KvWorker.Contracts;
using MassTransit;

namespace KvWorker.Pipeline;

/// <summary>
/// One request as the pipeline sees it, built once per message: which operation,
/// the request itself, who sent it (the broker-validated AMQP <c>user_id</c>), its
/// identity (<c>message_id</c>, else MassTransit's MessageId), where the reply goes
/// and by when it must be answered.
/// </summary>
public sealed record KvRequestContext(
    KvOperation Operation, IKvRequest Request, string? CallerIdentity, string? MessageId, AmqpProperties Amqp, DateTime Deadline)
{
    public static KvRequestContext From<TRequest>(ConsumeContext<TRequest> context, KvOperation operation, TimeSpan longestBudget)
        where TRequest : class, IKvRequest
    {
        var amqp = AmqpProperties.From(context.ReceiveContext);
        // A MassTransit request's time-out arrives as its expiration time.
        var deadline = DateTime.UtcNow + longestBudget;
        if (context.ExpirationTime is { } expires && expires < deadline) deadline = expires;
        return new KvRequestContext(operation, context.Message, amqp.UserId, amqp.MessageId ?? context.MessageId?.ToString(), amqp, deadline);
    }

    /// <summary>Time left to answer, retries of transient faults included; at least a millisecond.</summary>
    public TimeSpan Budget
    {
        get
        {
            var left = Deadline - DateTime.UtcNow;
            return left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1);
        }
    }
}
