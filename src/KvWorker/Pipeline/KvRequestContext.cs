using KvWorker.Amqp;
using KvWorker.Contracts;
using MassTransit;

namespace KvWorker.Pipeline;

/// <summary>
/// One request as the pipeline sees it, built once per message: which operation,
/// the request itself, who sent it (the broker-validated AMQP <c>user_id</c>), its
/// identity (<c>message_id</c>, else MassTransit's MessageId), where the reply goes,
/// when its caller stops waiting (<see cref="CallerDeadline"/>) and by when it must
/// be answered (<see cref="Deadline"/>: a little before that, or <c>request_timeout_seconds</c> from now).
/// </summary>
public sealed record KvRequestContext(
    KvOperation Operation, IKvRequest Request, string? CallerIdentity, string? MessageId, AmqpProperties Amqp,
    DateTime? CallerDeadline, DateTime Deadline)
{
    public static KvRequestContext From<TRequest>(ConsumeContext<TRequest> context, KvOperation operation, TimeSpan longestBudget)
        where TRequest : class, IKvRequest
    {
        var amqp = AmqpProperties.From(context.ReceiveContext);
        // A plain client's deadline comes in its properties, a MassTransit request's time-out as its expiration time.
        var callerDeadline = amqp.Deadline ?? context.ExpirationTime;
        var now = DateTime.UtcNow;
        var deadline = now + longestBudget;
        if (callerDeadline is { } callerStops)
        {
            var answerBy = callerStops - ReplyMargin(callerStops - now);
            if (answerBy < deadline) deadline = answerBy;
        }
        return new KvRequestContext(operation, context.Message, amqp.UserId, amqp.MessageId ?? context.MessageId?.ToString(), amqp,
            callerDeadline, deadline);
    }

    /// <summary>
    /// How long before its caller's deadline a request must be answered, so that a StoreUnavailableError
    /// reaches the caller before it gives up rather than just after: a tenth of the time left, at most a second.
    /// </summary>
    private static TimeSpan ReplyMargin(TimeSpan timeLeft) =>
        timeLeft > TimeSpan.Zero ? TimeSpan.FromTicks(Math.Min(timeLeft.Ticks / 10, TimeSpan.TicksPerSecond)) : TimeSpan.Zero;

    /// <summary>Whether the caller had stopped waiting before the request was taken: it is then dropped, unapplied and unanswered.</summary>
    public bool CallerGaveUp => CallerDeadline <= DateTime.UtcNow;

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
