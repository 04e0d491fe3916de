using System.Collections.Concurrent;
using System.Text.Json;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Cli;

/// <summary>
/// Calls the worker with RabbitMQ's RPC pattern: a JSON body to the default
/// exchange, routed by queue name, answered on an exclusive reply queue and
/// matched by correlation_id. Every request gets a fresh message_id (its
/// identity for exactly-once writes) and the connection's user as user_id,
/// which RabbitMQ checks, so the worker can trust it.
/// </summary>
public sealed class KvClient : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly IChannel _channel;
    private readonly string _replyQueue;
    private readonly string _userName;
    private readonly Uri _url;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonElement>> _pending = new();

    private KvClient(IConnection connection, IChannel channel, string replyQueue, string userName, Uri url)
    {
        _url = url;
        _connection = connection;
        _channel = channel;
        _replyQueue = replyQueue;
        _userName = userName;
    }

    /// <summary>The broker's address without the password, for messages.</summary>
    public static string Describe(Uri url) => new UriBuilder(url) { UserName = "", Password = "" }.Uri.ToString();

    public static async Task<(IConnection Connection, string UserName)> OpenConnectionAsync(Uri url, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory { Uri = url, ClientProvidedName = "kv" };
        try
        {
            return (await factory.CreateConnectionAsync(cancellationToken), factory.UserName);
        }
        catch (BrokerUnreachableException ex)
        {
            // The innermost exception says why: connection refused, login refused, unknown host, ...
            throw new CliException(ExitCodes.Unreachable, $"cannot reach RabbitMQ at {Describe(url)}: {ex.GetBaseException().Message}");
        }
    }

    public static async Task<KvClient> ConnectAsync(Uri url, CancellationToken cancellationToken)
    {
        var (connection, userName) = await OpenConnectionAsync(url, cancellationToken);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var replyQueue = (await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true,
            cancellationToken: cancellationToken)).QueueName;
        var client = new KvClient(connection, channel, replyQueue, userName, url);

        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            if (client._pending.TryRemove(delivery.BasicProperties.CorrelationId ?? "", out var waiter))
            {
                try
                {
                    using var reply = JsonDocument.Parse(delivery.Body);
                    waiter.TrySetResult(reply.RootElement.Clone());
                }
                catch (JsonException ex)
                {
                    waiter.TrySetException(new CliException(ExitCodes.Unreachable, $"the worker's reply is not JSON: {ex.Message}"));
                }
            }
            return Task.CompletedTask;
        };
        // A mandatory publish to a queue nobody declared comes back at once.
        channel.BasicReturnAsync += (_, returned) =>
        {
            if (client._pending.TryRemove(returned.BasicProperties.CorrelationId ?? "", out var waiter))
                waiter.TrySetException(new CliException(ExitCodes.Unreachable,
                    $"there is no queue {returned.RoutingKey} on {Describe(url)}: is a worker running against this broker and virtual host?"));
            return Task.CompletedTask;
        };
        await channel.BasicConsumeAsync(replyQueue, autoAck: true, consumer, cancellationToken);
        return client;
    }

    /// <summary>Sends one request and waits for its reply (a result or an <c>{"error": ...}</c> body).</summary>
    public async Task<JsonElement> CallAsync(string queue, object request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var correlationId = Guid.NewGuid().ToString("N");
        var waiter = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[correlationId] = waiter;
        var properties = new BasicProperties
        {
            ContentType = "application/json",
            CorrelationId = correlationId,
            ReplyTo = _replyQueue,
            MessageId = Guid.NewGuid().ToString(),
            UserId = _userName,
        };
        var body = JsonSerializer.SerializeToUtf8Bytes(request, request.GetType(), Json.RequestOptions);
        await _channel.BasicPublishAsync("", queue, mandatory: true, properties, body, cancellationToken);
        try
        {
            return await waiter.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new CliException(ExitCodes.Unreachable,
                $"no reply on {queue} within {timeout.TotalSeconds:0.#} s: is a worker running against {Describe(_url)}?");
        }
        finally
        {
            _pending.TryRemove(correlationId, out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await _connection.DisposeAsync();
    }
}

/// <summary>Process exit codes, documented in <c>kv --help</c> and the README.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The worker answered with an error (quota, invalid value, ...).</summary>
    public const int WorkerError = 1;
    /// <summary>The command line or a value given on it is invalid.</summary>
    public const int Usage = 2;
    /// <summary>RabbitMQ cannot be reached, or no worker answered in time.</summary>
    public const int Unreachable = 3;
    /// <summary><c>kv get</c> of a key that does not exist (or has expired).</summary>
    public const int NotFound = 4;
}

/// <summary>A failure the CLI reports as one line on stderr and an exit code.</summary>
public sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
