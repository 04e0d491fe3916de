using System.Text.Json;
using KvWorker.Contracts;
using MassTransit;

namespace KvWorker.Messaging;

/// <summary>
/// Runs for every message that ends in error before or inside a consumer
/// (garbage bytes, wrong JSON types, missing fields, unexpected faults) so a
/// plain AMQP caller still gets its one reply. MassTransit request clients get
/// MassTransit's own Fault reply. The message then goes on to the error queue.
/// </summary>
public sealed class ErrorReplyFilter(ILogger logger) : IFilter<ExceptionReceiveContext>
{
    public async Task Send(ExceptionReceiveContext context, IPipe<ExceptionReceiveContext> next)
    {
        var responseAddress = context.TransportHeaders.TryGetHeader(MessageHeaders.ResponseAddress, out _)
            ? new Uri("urn:masstransit-client")
            : null;
        if (AmqpReply.IsWanted(context, responseAddress))
        {
            try
            {
                await AmqpReply.SendAsync(context, ToReply(context.Exception), context.CancellationToken);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Could not send the error reply for a failed request");
            }
        }
        await next.Send(context);
    }

    public static KvError ToReply(Exception exception)
    {
        var json = FindJsonException(exception);
        var detail = json is not null
            ? new KvErrorDetail { Code = KvErrorCodes.KeyValueStoreError, Message = $"malformed request: {json.Message}" }
            : new KvErrorDetail { Code = KvErrorCodes.KeyValueStoreError, Message = $"request failed: {exception.GetBaseException().Message}" };
        return new KvError { Error = detail };
    }

    private static JsonException? FindJsonException(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
            if (exception is JsonException json) return json;
        return null;
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("kvErrorReply");
}
