using System.Text;
using KvWorker.Client;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Bench;

/// <summary>
/// The worker (or the echo service) through the client library's low-level call:
/// plain AMQP RPC, no MassTransit, any number of calls outstanding at once. Every
/// request carries a fresh message_id (mutations are exactly-once by it, and that
/// cost belongs in the figures) and user_id equal to the connection's user.
/// </summary>
public sealed class RpcClient : ILoadTarget, IAsyncDisposable
{
    private static readonly KvRawCallOptions CallOptions = new() { Timeout = TimeSpan.FromSeconds(60) };
    private static readonly byte[] ErrorPrefix = "{\"error\""u8.ToArray();

    private readonly KvClient _client;

    private RpcClient(string name, KvClient client)
    {
        Name = name;
        _client = client;
    }

    public string Name { get; }

    public static async Task<RpcClient> ConnectAsync(string name, Uri amqpUri, CancellationToken cancellationToken) =>
        new(name, await KvClient.ConnectAsync(amqpUri, new KvClientOptions { ClientName = "kv-bench-" + name }, cancellationToken));

    /// <summary>Sends one request and waits for its reply; returns the reply when it is an error, else null.</summary>
    public async Task<string?> CallAsync(Request request, CancellationToken cancellationToken)
    {
        try
        {
            var reply = await _client.CallRawAsync(request.Operation.Queue, Workload.RequestBody(request), CallOptions, cancellationToken);
            return reply.Body.AsSpan().StartsWith(ErrorPrefix) ? Encoding.UTF8.GetString(reply.Body) : null;
        }
        catch (KvTimeoutException ex)
        {
            throw new TimeoutException($"{Name}: no reply to {request.Operation} on {request.Namespace}/{request.Key} within {ex.Timeout.TotalSeconds} s", ex);
        }
    }

    /// <summary>Waits until every operation queue has at least <paramref name="consumers"/> consumers (the replicas are ready).</summary>
    public static async Task WaitForConsumersAsync(Uri amqpUri, int consumers, Func<string> diagnostics, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        await using var connection = await new ConnectionFactory { Uri = amqpUri }.CreateConnectionAsync(cancellationToken);
        foreach (var queue in KvWorker.Contracts.KvOperations.All.Select(operation => operation.Queue))
        {
            while (await ConsumerCountAsync(connection, queue, cancellationToken) < consumers)
            {
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"{queue} in {amqpUri.AbsolutePath} did not reach {consumers} consumers within 90 s.\n{diagnostics()}");
                await Task.Delay(250, cancellationToken);
            }
        }
    }

    private static async Task<uint> ConsumerCountAsync(IConnection connection, string queue, CancellationToken cancellationToken)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue, cancellationToken)).ConsumerCount;
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == 404)
        {
            return 0; // not declared yet
        }
    }

    /// <summary>The broker's version, as it announces itself on connecting.</summary>
    public string ServerVersion =>
        _client.Connection.ServerProperties?.TryGetValue("version", out var version) == true && version is byte[] bytes
            ? Encoding.UTF8.GetString(bytes)
            : "unknown";

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}
