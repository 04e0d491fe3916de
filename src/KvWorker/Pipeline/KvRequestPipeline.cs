using System.Diagnostics;
using KvWorker.Amqp;
using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Storage;
using KvWorker.Telemetry;
using MassTransit;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace KvWorker.Pipeline;

/// <summary>
/// One request's path from queue to reply, the same for every operation:
/// the request context, validation, persona policy, the provider, the adapter
/// call (transient storage faults retried with jittered exponential back-off
/// within the request's budget), metrics, and exactly one reply (result or
/// error) to whichever kind of client asked.
/// </summary>
public sealed class KvRequestPipeline
{
    private readonly KvCommands _commands;
    private readonly PersonaPolicy _policy;
    private readonly KvStoreAdapterRegistry _adapters;
    private readonly IOptions<KvStoreOptions> _options;
    private readonly ILogger<KvRequestPipeline> _logger;
    private readonly ResiliencePipeline _retries;

    public KvRequestPipeline(
        KvCommands commands, PersonaPolicy policy, KvStoreAdapterRegistry adapters, IOptions<KvStoreOptions> options,
        ILogger<KvRequestPipeline> logger)
    {
        _commands = commands;
        _policy = policy;
        _adapters = adapters;
        _options = options;
        _logger = logger;
        _retries = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(50),
            MaxDelay = TimeSpan.FromSeconds(2),
            // Bounded by the request's budget, whose cancellation ends the retries.
            MaxRetryAttempts = int.MaxValue,
            OnRetry = retry =>
            {
                _logger.LogWarning("Transient storage fault, retrying in {Delay}: {Message}", retry.RetryDelay, retry.Outcome.Exception?.Message);
                return default;
            },
        }).Build();
    }

    public async Task HandleAsync<TRequest>(ConsumeContext<TRequest> context, KvOperation operation)
        where TRequest : class, IKvRequest
    {
        var started = Stopwatch.GetTimestamp();
        var request = KvRequestContext.From(context, operation, TimeSpan.FromSeconds(_options.Value.RequestTimeoutSeconds));
        if (request.CallerGaveUp)
        {
            // Applying it now could double an effect its caller retries with a new message_id.
            _logger.LogInformation("Dropped {Operation} (message_id {MessageId}) unapplied: its caller stopped waiting {Late} ago",
                operation.Name, request.MessageId, DateTime.UtcNow - request.CallerDeadline);
            KvMetrics.RequestDropped(operation);
            return;
        }
        var budget = request.Budget;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        deadline.CancelAfter(budget);
        object reply;
        object? quotaEvent = null;
        var ns = request.Request.Namespace;
        string? key = null;
        var persona = request.Request.Persona;
        // The budget mostly runs out while waiting for the next try: the reply then says what failed, not "canceled".
        Exception? lastFault = null;
        try
        {
            var command = _commands.Prepare(request.Request, request.MessageId);
            key = command.Key;
            persona = _policy.Authorize(request, ns);
            var adapter = Adapter(request.Request.Provider, persona);
            reply = await _retries.ExecuteAsync(async ct =>
            {
                try
                {
                    return await command.RunAsync(adapter, ct);
                }
                catch (Exception ex) when (IsTransient(ex))
                {
                    lastFault = ex;
                    throw;
                }
            }, deadline.Token);
        }
        catch (KvStoreException ex)
        {
            _logger.LogDebug("{Operation} on {Namespace}/{Key} rejected: {Code} {Message}", operation.Name, ns, key, ex.Code, ex.Message);
            reply = ex.ToReply();
            if (ex is QuotaExceededException quota)
                quotaEvent = quota.ToEvent(ns!, key!, persona, DateTimeOffset.UtcNow);
        }
        catch (Exception ex) when ((IsTransient(ex) || ex is OperationCanceledException) && !context.CancellationToken.IsCancellationRequested)
        {
            // The budget ran out while storage was failing or slow. A mutation may
            // still have committed: a retry with the same message_id is answered
            // from its record instead of applied twice.
            // The reply names the budget, not the time taken, which a busy machine stretches past it.
            var reason = (ex is OperationCanceledException ? lastFault : null) ?? ex;
            _logger.LogError("Storage unavailable for {Operation} on {Namespace}/{Key} within {Budget} (answered after {Elapsed}): {Message}",
                operation.Name, ns, key, budget, Stopwatch.GetElapsedTime(started), reason.Message);
            reply = new KvStoreException(KvErrorCodes.StoreUnavailableError,
                $"storage did not answer within {budget.TotalSeconds:0.#} s: {reason.Message}").ToReply();
        }
        catch (Exception ex) when (!context.CancellationToken.IsCancellationRequested)
        {
            // A fault no check foresaw: the endpoint's error filter answers it and MassTransit logs it.
            // Counted here as the error it is answered with, or the error panels would leave out the worst.
            KvMetrics.RequestCompleted(operation, ns, ErrorReplyFilter.ToReply(ex), Stopwatch.GetElapsedTime(started));
            throw;
        }

        KvMetrics.RequestCompleted(operation, ns, reply, Stopwatch.GetElapsedTime(started));
        await AmqpReply.SendAsync(context, request.Amqp, reply);
        if (quotaEvent is not null)
            await PublishRejectionAsync(context, quotaEvent);
    }

    /// <summary>The request's provider, else its persona's, else <c>default_adapter</c>.</summary>
    private IKvStoreAdapter Adapter(string? requestedProvider, string? persona)
    {
        var kvStore = _options.Value;
        var personaProvider = persona is null ? null : kvStore.Personas.GetValueOrDefault(persona)?.Provider;
        var name = requestedProvider ?? personaProvider ?? kvStore.DefaultAdapter;
        if (_adapters.Contains(name)) return _adapters.Get(name);
        var source = requestedProvider is not null ? "request"
            : personaProvider is not null ? $"persona '{persona}'"
            : $"{KvStoreOptions.Section}:default_adapter";
        throw KvStoreException.InvalidRequest(
            $"unknown provider '{name}' named by {source}; registered providers: {string.Join(", ", _adapters.Names.Order())}");
    }

    /// <summary>Faults worth another try: storage unreachable (adapters say so) and time-outs.</summary>
    private static bool IsTransient(Exception ex) => ex is KvStoreUnavailableException or TimeoutException;

    /// <summary>
    /// Reports a quota rejection after the reply. A failure here is logged, not
    /// thrown: the request is answered, and throwing would answer it twice.
    /// </summary>
    private async Task PublishRejectionAsync(ConsumeContext context, object quotaEvent)
    {
        try
        {
            await context.Publish(quotaEvent, quotaEvent.GetType(), context.CancellationToken);
        }
        catch (Exception ex) when (!context.CancellationToken.IsCancellationRequested)
        {
            _logger.LogError(ex, "Could not publish {Event}", quotaEvent);
        }
    }
}
