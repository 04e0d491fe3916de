using System.Text.Json;
using KvWorker.Contracts;
using MassTransit;

namespace KvWorker.Amqp;

/// <summary>Where a MassTransit request client waits for the answer to a message that could not be read.</summary>
public static class MassTransitEnvelope
{
    public const string ContentType = "application/vnd.masstransit+json";

    /// <summary>
    /// The envelope's <c>responseAddress</c> and <c>requestId</c>, or, for a raw JSON body, the
    /// <c>MT-Response-Address</c> and <c>RequestId</c> headers, which is where MassTransit's raw
    /// serializer puts them and where the answer to a readable request goes too.
    /// </summary>
    public static bool TryReadRequest(ReceiveContext context, out Guid? requestId, out Uri responseAddress)
    {
        if (TryReadEnvelope(context.Body, out var envelopeRequestId, out responseAddress))
        {
            requestId = envelopeRequestId;
            return true;
        }
        requestId = context.GetRequestId();
        responseAddress = context.GetResponseAddress()!;
        return responseAddress is not null;
    }

    private static bool TryReadEnvelope(MessageBody body, out Guid requestId, out Uri responseAddress)
    {
        requestId = Guid.Empty;
        responseAddress = null!;
        try
        {
            using var envelope = JsonDocument.Parse(body.GetBytes(), new JsonDocumentOptions { MaxDepth = KvJsonDepth.MaxMessage });
            var root = envelope.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("requestId", out var id) && id.ValueKind == JsonValueKind.String && id.TryGetGuid(out requestId)
                && root.TryGetProperty("responseAddress", out var address) && address.ValueKind == JsonValueKind.String
                && Uri.TryCreate(address.GetString(), UriKind.Absolute, out responseAddress!);
        }
        // Not an envelope at all, or one whose strings hold a lone surrogate escape (which
        // System.Text.Json reads only as an invalid operation): there is no address in it.
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return false;
        }
    }
}
