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
    private static readonly TimeSpan[] RetryDelays =
        [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)];

    public KvLimitsOptions Limits => options.Value.Limits;

    public async Task HandleAsync<TResult>(
        ConsumeContext context, string ns, string key, string? persona, string? provider,
        Func<IKvStoreAdapter, CancellationToken, Task<TResult>> operation)
        where TResult : class
    {
        var cancellationToken = context.CancellationToken;
        object reply;
        try
        {
            RequestValidation.CheckName(ns, "namespace", Limits.MaxNamespaceLength);
            RequestValidation.CheckName(key, "key", Limits.MaxKeyLength);
            var actingPersona = policy.Authorize(context, ns, persona);
            var adapter = adapters.Resolve(provider, actingPersona);
            reply = await RunWithRetriesAsync(adapter, operation, cancellationToken);
        }
        catch (KvStoreException ex)
        {
            logger.LogDebug("Request on {Namespace}/{Key} rejected: {Code} {Message}", ns, key, ex.Code, ex.Message);
            reply = ex.ToReply();
        }
        catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
        {
            logger.LogError(ex, "Storage unavailable for {Namespace}/{Key} after {Attempts} attempts", ns, key, RetryDelays.Length + 1);
            reply = new KvStoreException(KvErrorCodes.StoreUnavailableError, $"storage unavailable: {ex.Message}").ToReply();
        }

        await ReplyAsync(context, reply);
    }

    private async Task<TResult> RunWithRetriesAsync<TResult>(
        IKvStoreAdapter adapter, Func<IKvStoreAdapter, CancellationToken, Task<TResult>> operation, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await operation(adapter, cancellationToken);
            }
            catch (Exception ex) when (IsTransient(ex) && attempt < RetryDelays.Length && !cancellationToken.IsCancellationRequested)
            {
                logger.LogWarning("Transient storage fault, retrying in {Delay}: {Message}", RetryDelays[attempt], ex.Message);
                await Task.Delay(RetryDelays[attempt], cancellationToken);
            }
        }
    }

    /// <summary>Faults worth another try: lost connections, pool time-outs, serialization failures, deadlocks.</summary>
    private static bool IsTransient(Exception ex) => ex switch
    {
        NpgsqlException npgsql => npgsql.IsTransient,
        TimeoutException => true,
        _ => false,
    };

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
