using System.Text.Json;
using KvWorker.Contracts;
using MassTransit;

namespace KvWorker.Messaging;

/// <summary>
/// Runs for every message that ends in error before or inside a consumer
/// (garbage bytes, wrong JSON types, missing fields, unexpected faults) so the
/// caller still gets its one reply: a plain AMQP caller on its reply_to, a
/// MassTransit request client a <see cref="KvError"/> unless MassTransit has
/// already sent it a Fault. The message then goes on to the error queue.
/// A body that could not be read is logged as one warning line here, and
/// MassTransit's own R-FAULT error for it is dropped (<see cref="IsMalformedRequestFault"/>).
/// </summary>
public sealed class ErrorReplyFilter(ILogger logger) : IFilter<ExceptionReceiveContext>
{
    /// <summary>MassTransit's log line for a message that failed before reaching a consumer.</summary>
    private const string ReceiveFaultTemplate = "R-FAULT {InputAddress} {MessageId} {Duration}";

    public async Task Send(ExceptionReceiveContext context, IPipe<ExceptionReceiveContext> next)
    {
        if (!context.TryGetPayload<ConsumerFaultContext>(out _) && FindReadFailure(context.Exception) is { } malformed)
        {
            var amqp = AmqpReply.Properties(context);
            logger.LogWarning("Rejected a malformed request on {InputAddress} (message_id {MessageId}, user_id {UserId}): {Reason}",
                context.InputAddress, amqp?.MessageId, amqp?.UserId, malformed.Message);
        }
        try
        {
            if (AmqpReply.IsWanted(context))
                await AmqpReply.SendAsync(context, ToReply(context.Exception), context.CancellationToken);
            else if (MassTransitEnvelope.TryReadRequest(context.Body, out var requestId, out var responseAddress))
            {
                if (!context.IsFaulted) await ReplyToRequestClientAsync(context, requestId, responseAddress);
            }
            else // labelled a MassTransit envelope but without a readable response address: reply_to is all there is
                await AmqpReply.SendAsync(context, ToReply(context.Exception), context.CancellationToken);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Could not send the error reply for a failed request");
        }
        await next.Send(ErrorQueueIdentity.ForErrorQueue(context));
    }

    /// <summary>
    /// True for MassTransit's R-FAULT error about a body that could not be read
    /// (already answered and logged by this filter); consumer faults and every
    /// other error are kept.
    /// </summary>
    public static bool IsMalformedRequestFault(Serilog.Events.LogEvent logEvent) =>
        logEvent.Level == Serilog.Events.LogEventLevel.Error
        && logEvent.MessageTemplate.Text == ReceiveFaultTemplate
        && FindReadFailure(logEvent.Exception) is not null;

    // A consumer fault has already been sent to the client as Fault<T>
    // (IsFaulted); a message that never reached a consumer has not.
    private static async Task ReplyToRequestClientAsync(ExceptionReceiveContext context, Guid requestId, Uri responseAddress)
    {
        var endpoint = await context.SendEndpointProvider.GetSendEndpoint(responseAddress);
        await endpoint.Send(ToReply(context.Exception), send => send.RequestId = requestId, context.CancellationToken);
    }

    public static KvError ToReply(Exception exception)
    {
        var failure = FindReadFailure(exception);
        var detail = failure is not null
            ? new KvErrorDetail { Code = KvErrorCodes.KeyValueStoreError, Message = $"malformed request: {failure.Message}" }
            : new KvErrorDetail { Code = KvErrorCodes.KeyValueStoreError, Message = $"request failed: {exception.GetBaseException().Message}" };
        return new KvError { Error = detail };
    }

    /// <summary>
    /// Why the body could not be read as the queue's request: the JSON error, else
    /// MassTransit's SerializationException (a body labelled as an envelope that is
    /// not one) or MessageNotConsumedException (an envelope of another message type).
    /// </summary>
    private static Exception? FindReadFailure(Exception? exception)
    {
        Exception? unreadable = null;
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is JsonException) return exception;
            if (exception is System.Runtime.Serialization.SerializationException or MessageNotConsumedException) unreadable ??= exception;
        }
        return unreadable;
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("kvErrorReply");
}
