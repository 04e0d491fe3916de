using System.Text.Json;
using KvWorker.Contracts;
using MassTransit;
using MassTransit.Middleware;
using MassTransit.Middleware.Rescue;
using Serilog.Events;

namespace KvWorker.Amqp;

/// <summary>
/// Runs for every message that ends in error before or inside a consumer
/// (garbage bytes, wrong JSON types, missing fields, unexpected faults) so the
/// caller still gets its one reply: a plain AMQP caller on its reply_to, a
/// MassTransit request client a <see cref="KvError"/> unless MassTransit has
/// already sent it a Fault. The message then goes on to the error queue.
/// A body that could not be read is logged as one warning line here, and
/// MassTransit's own error log entry for it is dropped (<see cref="IsMalformedRequestFault"/>).
/// </summary>
public sealed class ErrorReplyFilter(ILogger logger) : IFilter<ExceptionReceiveContext>
{
    public async Task Send(ExceptionReceiveContext context, IPipe<ExceptionReceiveContext> next)
    {
        var amqp = AmqpProperties.From(context);
        if (!context.TryGetPayload<ConsumerFaultContext>(out _) && FindReadFailure(context.Exception) is { } malformed)
        {
            logger.LogWarning("Rejected a malformed request on {InputAddress} (message_id {MessageId}, user_id {UserId}): {Reason}",
                context.InputAddress, amqp.MessageId, amqp.UserId, malformed.Message);
        }
        try
        {
            if (amqp.IsPlainRpc)
                await AmqpReply.PublishAsync(context, amqp, ToReply(context.Exception), context.CancellationToken);
            else if (MassTransitEnvelope.TryReadRequest(context, out var requestId, out var responseAddress))
            {
                // A consumer fault has already been sent to the client as Fault<T>; a message that never reached a consumer has not.
                if (!context.IsFaulted)
                {
                    var endpoint = await context.SendEndpointProvider.GetSendEndpoint(responseAddress);
                    await endpoint.Send(ToReply(context.Exception), send => send.RequestId = requestId, context.CancellationToken);
                }
            }
            else // no readable response address: reply_to is all there is
                await AmqpReply.PublishAsync(context, amqp, ToReply(context.Exception), context.CancellationToken);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "Could not send the error reply for a failed request");
        }
        await next.Send(ErrorQueueIdentity.ForErrorQueue(context));
    }

    /// <summary>
    /// True for MassTransit's error log entry about a body that could not be read
    /// (already answered and logged by this filter): an error caused by a read
    /// failure, logged for no consumer. Consumer faults and every other error are kept.
    /// </summary>
    public static bool IsMalformedRequestFault(LogEvent logEvent) =>
        logEvent.Level == LogEventLevel.Error
        && !logEvent.Properties.ContainsKey("ConsumerType")
        && FindReadFailure(logEvent.Exception) is not null;

    /// <summary>How the reply to a fault no check foresaw begins, apart from a malformed request's.</summary>
    public const string UnexpectedFaultPrefix = "request failed: ";

    public static KvError ToReply(Exception exception)
    {
        var failure = FindReadFailure(exception);
        var detail = failure is not null
            ? new KvErrorDetail { Code = KvErrorCodes.KeyValueStoreError, Message = $"malformed request: {failure.Message}" }
            : new KvErrorDetail { Code = KvErrorCodes.KeyValueStoreError, Message = UnexpectedFaultPrefix + exception.GetBaseException().Message };
        return new KvError { Error = detail };
    }

    /// <summary>
    /// Why the body could not be read as the queue's request: the JSON error, else
    /// MassTransit's SerializationException (a body labelled as an envelope that is
    /// not one) or MessageNotConsumedException (an envelope of another message type),
    /// or a JSON <c>null</c> body, which MassTransit reports as an invalid operation.
    /// </summary>
    private static Exception? FindReadFailure(Exception? exception)
    {
        Exception? unreadable = null;
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is JsonException) return exception;
            if (exception is System.Runtime.Serialization.SerializationException or MessageNotConsumedException) unreadable ??= exception;
            if (exception is InvalidOperationException && ThrownReadingTheBody(exception))
                unreadable ??= new JsonException("the body is not a JSON object");
        }
        return unreadable;
    }

    /// <summary>
    /// True when MassTransit's reading of the body is on the exception's stack: a JSON null body
    /// reaches System.Text.Json as an empty element, which throws from within System.Text.Json.
    /// </summary>
    private static bool ThrownReadingTheBody(Exception exception) =>
        new System.Diagnostics.StackTrace(exception, fNeedFileInfo: false).GetFrames()
            .Any(frame => frame.GetMethod()?.DeclaringType?.Name == "SystemTextJsonSerializerContext");

    public void Probe(ProbeContext context) => context.CreateFilterScope("kvErrorReply");
}

/// <summary>
/// A message no consumer took (a MassTransit envelope of another message type)
/// is treated like a body that could not be read: answered once by
/// <see cref="ErrorReplyFilter"/> and moved to <c>&lt;queue&gt;_error</c>, rather
/// than moved silently to <c>&lt;queue&gt;_skipped</c>, which would leave the
/// caller waiting and copy its user_id, which the broker refuses.
/// </summary>
public sealed class NotConsumedFilter(ILogger logger) : IFilter<ReceiveContext>
{
    private readonly IPipe<ExceptionReceiveContext> _errorPipe = Pipe.New<ExceptionReceiveContext>(error =>
    {
        error.UseFilter(new ErrorReplyFilter(logger));
        error.UseFilter(new ErrorTransportFilter());
    });

    public Task Send(ReceiveContext context, IPipe<ReceiveContext> next) =>
        _errorPipe.Send(new RescueExceptionReceiveContext(context,
            new MessageNotConsumedException(context.InputAddress, "no operation on this queue reads the message's type")));

    public void Probe(ProbeContext context) => context.CreateFilterScope("kvNotConsumed");
}
