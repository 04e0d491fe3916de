using KvWorker.Storage;
using KvWorker.Telemetry;
using MassTransit;

namespace KvWorker.Events;

/// <summary>Publishes adapters' events through the bus, as plain JSON on their fanout exchanges (see <see cref="Extensions.ConfigureKvEvents"/>).</summary>
public sealed class MassTransitEventPublisher(IBus bus) : IKvEventPublisher
{
    public async Task PublishAsync(object @event, CancellationToken cancellationToken)
    {
        await bus.Publish(@event, @event.GetType(), cancellationToken);
        KvMetrics.EventPublished(@event.GetType());
    }
}
