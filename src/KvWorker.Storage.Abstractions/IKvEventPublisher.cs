namespace KvWorker.Storage;

/// <summary>
/// Publishes the store's events (the records of <see cref="Contracts.KvEvents"/>) to
/// their subscribers. The worker provides it; adapters publish through it what their
/// changes report (expiries, quota thresholds), once each and only after the change committed.
/// </summary>
public interface IKvEventPublisher
{
    Task PublishAsync(object @event, CancellationToken cancellationToken);
}
