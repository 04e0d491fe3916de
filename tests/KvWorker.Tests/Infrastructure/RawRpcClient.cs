using System.Collections.Concurrent;
using System.Text;
using KvWorker.Client;
using RabbitMQ.Client;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// A plain AMQP client following RabbitMQ's RPC tutorial (no MassTransit): the
/// client library's low-level call, which sends any bytes and returns the reply
/// as it came. Requests carry the connection's user as AMQP user_id (the
/// identity the persona policy checks) unless told not to.
/// </summary>
public sealed class RawRpcClient : IAsyncDisposable
{
    private readonly KvClient _client;
    private readonly bool _sendUserId;

    private RawRpcClient(KvClient client, bool sendUserId)
    {
        _client = client;
        _sendUserId = sendUserId;
        client.UnmatchedReply += reply => Unmatched.Add(Encoding.UTF8.GetString(reply.Body));
    }

    public static async Task<RawRpcClient> ConnectAsync(Uri amqpUri, bool sendUserId = true) =>
        new(await KvClient.ConnectAsync(amqpUri, new KvClientOptions { ClientName = "kvtest" }), sendUserId);

    /// <summary>Replies that matched no pending request (duplicates, or replies after a time-out).</summary>
    public ConcurrentBag<string> Unmatched { get; } = [];

    public async Task<JsonElement> CallAsync(string queue, object request, string? messageId = null, TimeSpan? timeout = null) =>
        await CallRawAsync(queue, JsonSerializer.SerializeToUtf8Bytes(request), messageId, timeout);

    public async Task<JsonElement> CallRawAsync(string queue, byte[] body, string? messageId = null, TimeSpan? timeout = null,
        string? contentType = "application/json")
    {
        var (text, _) = await CallWithPropertiesAsync(queue, body, messageId, timeout, contentType);
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    public async Task<(string Body, IReadOnlyBasicProperties Properties)> CallWithPropertiesAsync(
        string queue, byte[] body, string? messageId = null, TimeSpan? timeout = null, string? contentType = "application/json")
    {
        var reply = await _client.CallRawAsync(queue, body, new KvRawCallOptions
        {
            MessageId = messageId,
            Timeout = timeout ?? KvCallOptions.DefaultTimeout,
            ContentType = contentType,
            SendUserId = _sendUserId,
        });
        return (Encoding.UTF8.GetString(reply.Body), reply.Properties);
    }

    /// <summary>The client's AMQP connection, for declarations of a test's own.</summary>
    public IConnection Connection => _client.Connection;

    public async Task<uint> ConsumerCountAsync(string queue)
    {
        await using var channel = await Connection.CreateChannelAsync();
        return (await channel.QueueDeclarePassiveAsync(queue)).ConsumerCount;
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
