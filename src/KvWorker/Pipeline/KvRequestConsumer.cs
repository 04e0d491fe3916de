using KvWorker.Contracts;
using MassTransit;

namespace KvWorker.Pipeline;

/// <summary>
/// The consumer of one operation's queue: every request type gets its own closed
/// type of this consumer, registered from <see cref="KvOperations.All"/>.
/// </summary>
public sealed class KvRequestConsumer<TRequest>(KvRequestPipeline pipeline) : IConsumer<TRequest>
    where TRequest : class, IKvRequest
{
    private static readonly KvOperation Operation = KvOperations.ForRequest(typeof(TRequest));

    public Task Consume(ConsumeContext<TRequest> context) => pipeline.HandleAsync(context, Operation);
}

public static class KvRequestConsumer
{
    /// <summary>The consumer type that serves <paramref name="operation"/>.</summary>
    public static Type For(KvOperation operation) => typeof(KvRequestConsumer<>).MakeGenericType(operation.RequestType);
}
