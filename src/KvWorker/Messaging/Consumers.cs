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
                return adapter.SetAsync(request.Namespace, request.Key, value, request.TtlSeconds, ct);
            });
    }
}

public sealed class KvDeleteConsumer(KvRequestHandler handler) : IConsumer<KvDelete>
{
    public Task Consume(ConsumeContext<KvDelete> context)
    {
        var request = context.Message;
        return handler.HandleAsync(context, request.Namespace, request.Key, request.Persona, request.Provider,
            (adapter, ct) => adapter.DeleteAsync(request.Namespace, request.Key, ct));
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
                return adapter.IncrementAsync(request.Namespace, request.Key, request.Delta, request.InitialValue, request.TtlSeconds, ct);
            });
    }
}
