using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Storage;
using MassTransit;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Messaging;

/// <summary>
/// What every operation shares: validate the names, pick the adapter, run the
/// operation with retries for transient storage faults, and send exactly one
/// reply (result or error) to whichever kind of client asked.
/// </summary>
public sealed class KvRequestHandler(
    KvStoreAdapterRegistry adapters, PersonaPolicy policy, IOptions<KvStoreOptions> options, ILogger<KvRequestHandler> logger)
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LongestRetryDelay = TimeSpan.FromSeconds(2);

    public KvLimitsOptions Limits => options.Value.Limits;

    public async Task HandleAsync<TResult>(
        ConsumeContext context, string ns, string key, string? persona, string? provider,
        Func<IKvStoreAdapter, CancellationToken, Task<TResult>> operation)
        where TResult : class
    {
        var budget = TimeBudget(context);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        deadline.CancelAfter(budget);
        object reply;
        object? quotaEvent = null;
        var actingPersona = persona;
        try
        {
            RequestValidation.CheckName(ns, "namespace", Limits.MaxNamespaceLength);
            RequestValidation.CheckName(key, "key", Limits.MaxKeyLength);
            actingPersona = policy.Authorize(context, ns, persona);
            var adapter = adapters.Resolve(provider, actingPersona);
            reply = await RunWithRetriesAsync(adapter, operation, deadline.Token);
        }
        catch (KvStoreException ex)
        {
            logger.LogDebug("Request on {Namespace}/{Key} rejected: {Code} {Message}", ns, key, ex.Code, ex.Message);
            reply = ex.ToReply();
            if (ex is QuotaExceededException quota)
                quotaEvent = quota.ToEvent(ns, key, actingPersona, DateTimeOffset.UtcNow);
        }
        catch (Exception ex) when ((IsTransient(ex) || ex is OperationCanceledException) && !context.CancellationToken.IsCancellationRequested)
        {
            // The budget ran out while storage was failing or slow. A mutation may
            // still have committed: a retry with the same message_id is answered
            // from its record instead of applied twice.
            logger.LogError("Storage unavailable for {Namespace}/{Key} within {Budget}: {Message}", ns, key, budget, ex.Message);
            reply = new KvStoreException(KvErrorCodes.StoreUnavailableError,
                $"storage did not answer within {budget.TotalSeconds:0.#} s: {ex.Message}").ToReply();
        }

        await ReplyAsync(context, reply);
        if (quotaEvent is not null)
            await PublishRejectionAsync(context, quotaEvent);
    }

    /// <summary>
    /// How long a request may take, retries included: <c>request_timeout_seconds</c>,
    /// or less when the message says it expires sooner (a MassTransit request's time-out).
    /// </summary>
    private TimeSpan TimeBudget(ConsumeContext context)
    {
        var budget = TimeSpan.FromSeconds(options.Value.RequestTimeoutSeconds);
        if (context.ExpirationTime is { } expires)
        {
            var left = expires - DateTime.UtcNow;
            if (left < budget) budget = left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1);
        }
        return budget;
    }

    /// <summary>Retries transient faults with doubling delays until the operation succeeds or the budget is cancelled.</summary>
    private async Task<TResult> RunWithRetriesAsync<TResult>(
        IKvStoreAdapter adapter, Func<IKvStoreAdapter, CancellationToken, Task<TResult>> operation, CancellationToken budget)
    {
        var delay = FirstRetryDelay;
        while (true)
        {
            try
            {
                return await operation(adapter, budget);
            }
            catch (Exception ex) when (IsTransient(ex) && !budget.IsCancellationRequested)
            {
                logger.LogWarning("Transient storage fault, retrying in {Delay}: {Message}", delay, ex.Message);
                await Task.Delay(delay, budget);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, LongestRetryDelay.Ticks));
            }
        }
    }

    /// <summary>Faults worth another try: lost connections, pool time-outs, serialization failures, deadlocks.</summary>
    private static bool IsTransient(Exception ex) => ex switch
    {
        NpgsqlException npgsql => npgsql.IsTransient,
        KvStoreUnavailableException => true,
        TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// Reports a quota rejection after the reply. A failure here is logged, not
    /// thrown: the request is answered, and throwing would answer it twice.
    /// </summary>
    private async Task PublishRejectionAsync(ConsumeContext context, object quotaEvent)
    {
        try
        {
            await context.Publish(quotaEvent, quotaEvent.GetType(), context.CancellationToken);
        }
        catch (Exception ex) when (!context.CancellationToken.IsCancellationRequested)
        {
            logger.LogError(ex, "Could not publish {Event}", quotaEvent);
        }
    }

    /// <summary>
    /// The request's identity for exactly-once mutations: the AMQP <c>message_id</c>
    /// (any string a plain client chose), else MassTransit's MessageId.
    /// </summary>
    public static string? RequestId(ConsumeContext context)
    {
        var messageId = AmqpReply.Properties(context.ReceiveContext)?.MessageId;
        return string.IsNullOrEmpty(messageId) ? context.MessageId?.ToString() : messageId;
    }

    /// <summary>Sends the reply to a plain AMQP client's reply_to, or to a MassTransit request client.</summary>
    public static Task ReplyAsync(ConsumeContext context, object reply)
    {
        // Without a MassTransit response address, reply_to is the only address (none: fire-and-forget).
        if (AmqpReply.IsWanted(context.ReceiveContext) || context.ResponseAddress is null)
            return AmqpReply.SendAsync(context.ReceiveContext, reply, context.CancellationToken);
        return context.RespondAsync(reply);
    }
}
