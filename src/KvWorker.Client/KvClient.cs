using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using KvWorker.Contracts;
using Polly;
using Polly.Retry;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace KvWorker.Client;

/// <summary>
/// A client of the KvWorker wire contract over plain AMQP, RabbitMQ's RPC pattern:
/// each request is a JSON body published to the default exchange with the
/// operation's queue as routing key, answered on this client's exclusive reply
/// queue and matched by <c>correlation_id</c>. Requests carry a <c>message_id</c>
/// (their identity for exactly-once writes), the connection's user as
/// <c>user_id</c> (RabbitMQ checks it, so the worker's persona policy can trust
/// it) and their time-out as <c>expiration</c>. One client holds one connection
/// and serves any number of calls from any number of tasks at once.
/// </summary>
public sealed class KvClient : IAsyncDisposable
{
    /// <summary>The content type of requests and replies.</summary>
    public const string JsonContentType = "application/json";

    // Requests and replies. As deep as a worker's limits allow (KvJsonDepth): System.Text.Json's default
    // of 64 could not read the kv_get_many reply of a value 62 deep, nor send a value 64 deep.
    private static readonly JsonSerializerOptions WireJson = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = KvJsonDepth.MaxMessage,
    };

    private IChannel _channel = null!;
    private readonly string _replyQueue;
    private readonly ResiliencePipeline? _retry;
    private readonly KvClientOptions _options;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<KvRawReply>> _pending = new();
    private long _lastCorrelationId;

    /// <summary>The new channel being opened after RabbitMQ closed the last one; calls wait for it.</summary>
    private volatile Task? _reopening;

    private KvClient(IConnection connection, string replyQueue, string userName, string broker, KvClientOptions options)
    {
        Connection = connection;
        _replyQueue = replyQueue;
        UserName = userName;
        Broker = broker;
        _retry = RetryPipeline(options.RetriesOnTimeout);
        _options = options;
    }

    /// <summary>The connection, for what this client does not wrap (declaring queues, following events, server properties).</summary>
    public IConnection Connection { get; }

    /// <summary>The connection's user: the <c>user_id</c> every request carries.</summary>
    public string UserName { get; }

    /// <summary>The broker's address without the password, as messages name it.</summary>
    public string Broker { get; }

    /// <summary>
    /// Raised for a reply that matches no call in flight: a duplicate, or one that came
    /// after its call timed out. Runs on the client's consumer: keep it short.
    /// </summary>
    public event Action<KvRawReply>? UnmatchedReply;

    /// <summary>
    /// Connects to RabbitMQ at <paramref name="url"/> (<c>amqp://user:password@host:5672/vhost</c>)
    /// and declares the client's reply queue.
    /// </summary>
    /// <exception cref="KvBrokerUnreachableException">No connection could be made within <see cref="KvClientOptions.ConnectTimeout"/>.</exception>
    /// <exception cref="KvLoginRefusedException">RabbitMQ refused the user name or password.</exception>
    /// <exception cref="KvBrokerException">RabbitMQ refused the virtual host, or the reply queue.</exception>
    public static async Task<KvClient> ConnectAsync(Uri url, KvClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new KvClientOptions();
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ConnectTimeout, TimeSpan.Zero, nameof(KvClientOptions.ConnectTimeout));
        var factory = new ConnectionFactory { Uri = url };
        var broker = new UriBuilder(url) { UserName = "", Password = "" }.Uri.ToString();
        IConnection connection;
        // RabbitMQ's client waits for the server's first AMQP frame without a limit of its own.
        using var connecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connecting.CancelAfter(options.ConnectTimeout);
        try
        {
            connection = await OpenConnectionAsync(factory, options.ClientName, connecting.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or BrokerUnreachableException
                                   && connecting.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new KvBrokerUnreachableException(broker, new TimeoutException(
                $"no AMQP handshake within {options.ConnectTimeout.TotalSeconds:0.###} s: is a RabbitMQ server listening there, and not hung?"));
        }
        catch (BrokerUnreachableException ex) when (ex.InnerException is AuthenticationFailureException)
        {
            throw new KvLoginRefusedException(broker, factory.UserName, ex);
        }
        catch (BrokerUnreachableException ex)
        {
            throw new KvBrokerUnreachableException(broker, ex);
        }

        try
        {
            // Named by the client rather than the server, so it keeps its name when the
            // connection recovers and replies to later calls still find it.
            var client = new KvClient(connection, $"{options.ClientName}.reply.{Guid.NewGuid():N}", factory.UserName, broker, options);
            await client.OpenChannelAsync(cancellationToken);
            return client;
        }
        catch (Exception ex)
        {
            // Whatever failed, the connection is not left open behind the caller's back.
            await connection.DisposeAsync();
            if (ex is OperationInterruptedException refused)
                throw new KvBrokerException($"RabbitMQ at {broker} refused: {refused.ShutdownReason?.ReplyText ?? refused.Message}", ex);
            throw;
        }
    }

    /// <summary>
    /// RabbitMQ's client honours a token that fires during the handshake late: cleaning up the
    /// interrupted open took 5 to 25 s more here (rabbitmq-dotnet-client#1921, fixed after 7.2.2).
    /// The caller is answered when the token fires; the abandoned attempt ends on its own, and a
    /// connection it opens after all is closed.
    /// </summary>
    private static async Task<IConnection> OpenConnectionAsync(ConnectionFactory factory, string name, CancellationToken cancellationToken)
    {
        var attempt = factory.CreateConnectionAsync(name, cancellationToken);
        try
        {
            return await attempt.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (!attempt.IsCompleted)
        {
            _ = attempt.ContinueWith(static async task =>
            {
                if (task.IsCompletedSuccessfully) await task.Result.DisposeAsync();
                else _ = task.Exception; // observed: the caller has its own exception already
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>The channel calls are published on, with the reply queue and its consumer.</summary>
    private async Task OpenChannelAsync(CancellationToken cancellationToken)
    {
        var channel = await Connection.CreateChannelAsync(cancellationToken: cancellationToken);
        // Declared with every channel: auto-delete, it went with the consumer of a channel that closed.
        await channel.QueueDeclareAsync(_replyQueue, durable: false, exclusive: true, autoDelete: true, cancellationToken: cancellationToken);
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += OnReplyAsync;
        channel.BasicReturnAsync += OnReturnAsync;
        channel.ChannelShutdownAsync += OnChannelShutdownAsync;
        await channel.BasicConsumeAsync(_replyQueue, autoAck: true, consumer, cancellationToken);
        _channel = channel;
    }

    /// <summary>
    /// RabbitMQ closes a channel on a channel-level error (a request it refuses: a user_id that is
    /// not the connection's, a body over its size limit) while the connection stays up, and the
    /// client library reopens channels only after a lost connection. So the calls in flight, whose
    /// replies went with the channel's reply consumer, fail now, and a new channel serves the next.
    /// </summary>
    private Task OnChannelShutdownAsync(object sender, ShutdownEventArgs reason)
    {
        // Closed by this client (DisposeAsync), or with the connection, whose recovery takes over: nothing to do.
        if (reason.Initiator == ShutdownInitiator.Application || !Connection.IsOpen) return Task.CompletedTask;
        // Not on the library's own thread, which the shutdown handler runs on.
        _reopening = Task.Run(async () =>
        {
            try
            {
                await OpenChannelAsync(CancellationToken.None);
            }
            catch (Exception ex) when (ex is OperationInterruptedException or AlreadyClosedException)
            {
                // The connection went too: its recovery reopens what it knew, or calls fail on the closed channel.
            }
        });
        // Each call's request went out and may have been applied: it ends with the message_id to retry it with.
        foreach (var waiter in _pending.Values)
        {
            var messageId = (string)waiter.Task.AsyncState!;
            waiter.TrySetException(new KvBrokerException($"RabbitMQ at {Broker} closed the channel: {reason.ReplyText}" + MayHaveBeenApplied(messageId))
            { MessageId = messageId });
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Sends <paramref name="request"/> to <paramref name="operation"/>'s queue and returns the typed result.
    /// </summary>
    /// <exception cref="KeyValueStoreException">The worker answered with an error (a subclass per code).</exception>
    /// <exception cref="KvTimeoutException">No reply within the time-out (after any retries).</exception>
    /// <exception cref="KvQueueNotFoundException">Nobody has declared the operation's queue.</exception>
    /// <exception cref="KvBrokerException">RabbitMQ refused the request, or the connection is gone.</exception>
    /// <exception cref="KvInvalidReplyException">The reply is not a worker's: not JSON, or not the result's shape.</exception>
    public async Task<TResult> CallAsync<TRequest, TResult>(
        KvOperation<TRequest, TResult> operation, TRequest request, KvCallOptions? options = null, CancellationToken cancellationToken = default)
        where TRequest : class, IKvRequest
        where TResult : class =>
        Result<TResult>(operation.Queue, await CallJsonAsync(operation, request, options, cancellationToken));

    /// <summary>The reply as the operation's result record; JSON of another shape is not a worker's reply.</summary>
    private static TResult Result<TResult>(string queue, JsonElement reply) where TResult : class
    {
        try
        {
            return reply.Deserialize<TResult>(WireJson) ?? throw new KvInvalidReplyException(queue, "is JSON null");
        }
        catch (JsonException ex)
        {
            throw new KvInvalidReplyException(queue, $"is not a {typeof(TResult).Name} ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// Like <see cref="CallAsync{TRequest, TResult}"/>, but returns the result as the worker
    /// sent it, fields this client's records do not know included: for callers that pass
    /// results on, as an agent runtime hands a tool's result to a model.
    /// </summary>
    /// <inheritdoc cref="CallAsync{TRequest, TResult}" path="/exception"/>
    public async Task<JsonElement> CallJsonAsync(
        KvOperation operation, IKvRequest request, KvCallOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (!operation.RequestType.IsInstanceOfType(request))
            throw new ArgumentException($"{operation.Name} takes a {operation.RequestType.Name}, not a {request.GetType().Name}", nameof(request));
        options ??= KvCallOptions.Default;
        var reply = await SendAsync(operation.Queue, Serialize(operation, request), options, KvRawCallOptions.Default, cancellationToken);
        JsonElement result;
        try
        {
            using var document = JsonDocument.Parse(reply.Body, new JsonDocumentOptions { MaxDepth = KvJsonDepth.MaxMessage });
            result = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new KvInvalidReplyException(operation.Queue, $"is not JSON ({ex.Message})", ex);
        }
        if (result.ValueKind == JsonValueKind.Object && result.TryGetProperty("error", out var error))
            throw KeyValueStoreException.FromError(error);
        return result;
    }

    /// <summary>The request as JSON, with this client's persona and provider where it names none.</summary>
    private byte[] Serialize(KvOperation operation, IKvRequest request)
    {
        var addPersona = request.Persona is null && _options.Persona is not null;
        var addProvider = request.Provider is null && _options.Provider is not null;
        if (!addPersona && !addProvider) return JsonSerializer.SerializeToUtf8Bytes(request, operation.RequestType, WireJson);
        var body = JsonSerializer.SerializeToNode(request, operation.RequestType, WireJson)!.AsObject();
        if (addPersona) body["persona"] = _options.Persona;
        if (addProvider) body["provider"] = _options.Provider;
        return JsonSerializer.SerializeToUtf8Bytes(body, WireJson);
    }

    /// <summary><c>kv_get</c>: the entry's value and remaining TTL, or <c>found: false</c>.</summary>
    public Task<KvGetResult> GetAsync(KvGet request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Get, request, options, cancellationToken);

    /// <summary><c>kv_set</c>: writes a JSON value, persistent unless it has a TTL.</summary>
    public Task<KvSetResult> SetAsync(KvSet request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Set, request, options, cancellationToken);

    /// <summary><c>kv_delete</c>: removes a key; <c>deleted: false</c> when it did not exist.</summary>
    public Task<KvDeleteResult> DeleteAsync(KvDelete request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Delete, request, options, cancellationToken);

    /// <summary><c>kv_increment</c>: adds to an integer atomically; a missing counter is created at initial value + delta.</summary>
    public Task<KvIncrementResult> IncrementAsync(KvIncrement request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Increment, request, options, cancellationToken);

    /// <summary><c>kv_list</c>: a page of a namespace's live keys in key byte order; pass <c>next_cursor</c> back for the next.</summary>
    public Task<KvListResult> ListAsync(KvList request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.List, request, options, cancellationToken);

    /// <summary><c>kv_touch</c>: a new TTL (null: persistent) for a live entry, keeping its value.</summary>
    public Task<KvTouchResult> TouchAsync(KvTouch request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Touch, request, options, cancellationToken);

    /// <summary><c>kv_get_many</c>: up to 100 keys of one namespace in one snapshot, a kv_get result each.</summary>
    public Task<KvGetManyResult> GetManyAsync(KvGetMany request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.GetMany, request, options, cancellationToken);

    /// <summary><c>kv_usage</c> (operators): a namespace's bytes and entries against its quota.</summary>
    public Task<KvUsageResult> UsageAsync(KvUsage request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Usage, request, options, cancellationToken);

    /// <summary><c>kv_purge</c> (operators): removes expired entries now, of one namespace or all.</summary>
    public Task<KvPurgeResult> PurgeAsync(PurgeExpiredEntries request, KvCallOptions? options = null, CancellationToken cancellationToken = default) =>
        CallAsync(KvOperations.Purge, request, options, cancellationToken);

    /// <summary>
    /// The low-level call, for tests that send what no typed request can: any bytes
    /// to any queue, with the properties of <paramref name="options"/>. Returns the
    /// reply as it arrived, whatever it holds; an error reply is not raised.
    /// </summary>
    /// <exception cref="KvTimeoutException">No reply within the time-out (after any retries).</exception>
    /// <exception cref="KvQueueNotFoundException">Nobody has declared <paramref name="queue"/>.</exception>
    /// <exception cref="KvBrokerException">RabbitMQ refused the request, or the connection is gone.</exception>
    public Task<KvRawReply> CallRawAsync(string queue, ReadOnlyMemory<byte> body, KvRawCallOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= KvRawCallOptions.Default;
        return SendAsync(queue, body, options, options, cancellationToken);
    }

    private async Task<KvRawReply> SendAsync(
        string queue, ReadOnlyMemory<byte> body, KvCallOptions call, KvRawCallOptions amqp, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(call.Timeout, TimeSpan.Zero, "Timeout");
        ArgumentOutOfRangeException.ThrowIfGreaterThan(call.Timeout, KvCallOptions.MaxTimeout, "Timeout");
        var correlationId = Interlocked.Increment(ref _lastCorrelationId).ToString(CultureInfo.InvariantCulture);
        var properties = new BasicProperties
        {
            ContentType = amqp.ContentType,
            CorrelationId = correlationId,
            ReplyTo = _replyQueue,
            // Time-ordered (UUIDv7): the worker files the identities of recent requests at one end of their index.
            MessageId = call.MessageId ?? Guid.CreateVersion7().ToString(),
            UserId = amqp.SendUserId ? amqp.UserId ?? UserName : null,
            // Whole milliseconds, at least one: "0" would let RabbitMQ drop a request no consumer is waiting for.
            Expiration = Math.Max(1, (long)Math.Ceiling(call.Timeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture),
        };
        // One waiter for every attempt: a late reply to an earlier attempt answers the call too. Its state is the message_id.
        var reply = new TaskCompletionSource<KvRawReply>(properties.MessageId, TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[correlationId] = reply;
        try
        {
            // Straight through when there is nothing to retry: the load generator's hot path.
            if (_retry is null) return await AttemptAsync(queue, body, properties, reply.Task, call.Timeout, resend: false, cancellationToken);
            return await _retry.ExecuteAsync(
                static (attempt, token) => attempt.Client.AttemptAsync(attempt.Queue, attempt.Body, attempt.Properties, attempt.Reply.Task,
                    attempt.Timeout, resend: attempt.Attempts.Value++ > 0, token),
                (Client: this, Queue: queue, Body: body, Properties: properties, Reply: reply, call.Timeout, Attempts: new StrongBox<int>()),
                cancellationToken);
        }
        finally
        {
            _pending.TryRemove(correlationId, out _);
        }
    }

    private async ValueTask<KvRawReply> AttemptAsync(
        string queue, ReadOnlyMemory<byte> body, BasicProperties properties, Task<KvRawReply> reply, TimeSpan timeout, bool resend,
        CancellationToken cancellationToken)
    {
        // Each attempt has the whole time-out again: the worker drops a request taken after its deadline.
        var deadline = DateTimeOffset.UtcNow + timeout;
        properties.Headers = new Dictionary<string, object?> { [KvHeaders.Deadline] = deadline.ToUnixTimeMilliseconds() };
        properties.Timestamp = new AmqpTimestamp(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        // The time-out covers the publish too: a connection RabbitMQ blocks (a memory or disk
        // alarm) stops taking publishes, which would otherwise wait for as long as the alarm lasts.
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(timeout);
        try
        {
            try
            {
                // RabbitMQ.Client 7 writes each publish to the socket as one unit, so
                // concurrent publishes on the channel need no lock of their own.
                // Mandatory: a request to a queue nobody declared comes back at once (OnReturnAsync).
                var channel = _channel;
                if (!channel.IsOpen && _reopening is { } reopening)
                {
                    await reopening.WaitAsync(attempt.Token);
                    channel = _channel;
                }
                await channel.BasicPublishAsync("", queue, mandatory: true, properties, body, attempt.Token);
            }
            catch (AlreadyClosedException ex)
            {
                // A resend follows an attempt that went out and may have been applied: only its message_id retries the call safely.
                var messageId = resend ? properties.MessageId : null;
                throw new KvBrokerException($"the connection to RabbitMQ at {Broker} is closed: {ex.ShutdownReason?.ReplyText ?? ex.Message}" +
                    (messageId is null ? "" : MayHaveBeenApplied(messageId)), ex) { MessageId = messageId };
            }
            return await reply.WaitAsync(attempt.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new KvTimeoutException(queue, properties.MessageId!, timeout, Broker);
        }
    }

    /// <summary>What a <see cref="KvBrokerException"/> says of a request that went out before RabbitMQ failed it.</summary>
    private static string MayHaveBeenApplied(string messageId) =>
        $" (message_id {messageId}: the request may or may not have been applied; a retry with it is never applied twice)";

    private Task OnReplyAsync(object sender, BasicDeliverEventArgs delivery)
    {
        // The body's memory is the client library's, valid only during this callback.
        var reply = new KvRawReply(delivery.Body.ToArray(), delivery.BasicProperties);
        if (_pending.TryRemove(delivery.BasicProperties.CorrelationId ?? "", out var waiter))
            waiter.TrySetResult(reply);
        else
            UnmatchedReply?.Invoke(reply);
        return Task.CompletedTask;
    }

    private Task OnReturnAsync(object sender, BasicReturnEventArgs returned)
    {
        if (_pending.TryRemove(returned.BasicProperties.CorrelationId ?? "", out var waiter))
            waiter.TrySetException(new KvQueueNotFoundException(returned.RoutingKey, Broker));
        return Task.CompletedTask;
    }

    private static ResiliencePipeline? RetryPipeline(int retriesOnTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(retriesOnTimeout, nameof(KvClientOptions.RetriesOnTimeout));
        if (retriesOnTimeout == 0) return null;
        return new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<KvTimeoutException>(),
                MaxRetryAttempts = retriesOnTimeout,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(100),
            })
            .Build();
    }

    /// <summary>Closes the channel and the connection; calls still in flight end with an <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync();
        await Connection.DisposeAsync();
        foreach (var waiter in _pending.Values) waiter.TrySetException(new ObjectDisposedException(nameof(KvClient)));
    }
}
