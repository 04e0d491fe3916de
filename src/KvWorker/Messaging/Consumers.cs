using KvWorker.Contracts;
using KvWorker.Storage;
using MassTransit;

namespace KvWorker.Messaging;

public sealed class KvGetConsumer(KvRequestHandler handler) : IConsumer<KvGet>
{
    public Task Consume(ConsumeContext<KvGet> context)
    {
        var request = context.Message;
        return handler.HandleAsync(context, request.Namespace, request.Key, request.Persona, request.Provider,
            (adapter, ct) => adapter.GetAsync(request.Namespace, request.Key, ct));
    }
}

public sealed class KvSetConsumer(KvRequestHandler handler) : IConsumer<KvSet>
{
    public Task Consume(ConsumeContext<KvSet> context)
    {
        var request = context.Message;
        return handler.HandleAsync(context, request.Namespace, request.Key, request.Persona, request.Provider,
            (adapter, ct) =>
            {
                RequestValidation.CheckTtl(request.TtlSeconds, handler.Limits);
                var value = StoredValue.From(request.Value, handler.Limits.MaxValueDepth);
                return adapter.SetAsync(request.Namespace, request.Key, value, request.TtlSeconds, KvRequestHandler.RequestId(context), ct);
            });
    }
}

public sealed class KvDeleteConsumer(KvRequestHandler handler) : IConsumer<KvDelete>
{
    public Task Consume(ConsumeContext<KvDelete> context)
    {
        var request = context.Message;
        return handler.HandleAsync(context, request.Namespace, request.Key, request.Persona, request.Provider,
            (adapter, ct) => adapter.DeleteAsync(request.Namespace, request.Key, KvRequestHandler.RequestId(context), ct));
    }
}

public sealed class KvIncrementConsumer(KvRequestHandler handler) : IConsumer<KvIncrement>
{
    public Task Consume(ConsumeContext<KvIncrement> context)
    {
        var request = context.Message;
        return handler.HandleAsync(context, request.Namespace, request.Key, request.Persona, request.Provider,
            (adapter, ct) =>
            {
                RequestValidation.CheckTtl(request.TtlSeconds, handler.Limits);
                return adapter.IncrementAsync(
                    request.Namespace, request.Key, request.Delta, request.InitialValue, request.TtlSeconds,
                    KvRequestHandler.RequestId(context), ct);
            });
    }
}

/// <summary>Operator query on queue <c>kv_usage</c>; the key check is satisfied by a fixed placeholder.</summary>
public sealed class KvUsageConsumer(KvRequestHandler handler) : IConsumer<KvUsage>
{
    public Task Consume(ConsumeContext<KvUsage> context)
    {
        var request = context.Message;
        return handler.HandleAsync(context, request.Namespace, "-", request.Persona, request.Provider,
            (adapter, ct) => adapter.UsageAsync(request.Namespace, ct));
    }
}
