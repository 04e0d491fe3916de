using System.Text.Json;
using MassTransit;

namespace KvWorker.Amqp;

/// <summary>Reads the reply address out of a MassTransit envelope whose message could not be deserialized.</summary>
public static class MassTransitEnvelope
{
    public const string ContentType = "application/vnd.masstransit+json";

    public static bool TryReadRequest(MessageBody body, out Guid requestId, out Uri responseAddress)
    {
        requestId = Guid.Empty;
        responseAddress = null!;
        try
        {
            using var envelope = JsonDocument.Parse(body.GetBytes());
            var root = envelope.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && root.TryGetProperty("requestId", out var id) && id.ValueKind == JsonValueKind.String && id.TryGetGuid(out requestId)
                && root.TryGetProperty("responseAddress", out var address) && address.ValueKind == JsonValueKind.String
                && Uri.TryCreate(address.GetString(), UriKind.Absolute, out responseAddress!);
        }
        catch (JsonException)
        {
            return false; // not an envelope at all: there is no address to answer
        }
    }
}
