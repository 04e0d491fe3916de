using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>
/// A storage provider for the four operations. Requests reaching an adapter are
/// already validated (names, TTL range); the adapter enforces the semantics of
/// values, TTL, increments and quotas, and reports rule violations by throwing
/// <see cref="KvStoreException"/>.
/// </summary>
/// <remarks>
/// <c>requestId</c> is the request's identity (AMQP <c>message_id</c> or
/// MassTransit MessageId), null when the caller gave none. A mutation whose
/// identity the adapter has already applied must change nothing and return
/// the original result; the record of it is written atomically with the
/// mutation. Rejected requests are not recorded, so a retry is judged afresh.
/// </remarks>
public interface IKvStoreAdapter
{
    Task<KvGetResult> GetAsync(string ns, string key, CancellationToken cancellationToken);

    Task<KvSetResult> SetAsync(
        string ns, string key, StoredValue value, double? ttlSeconds, string? requestId, CancellationToken cancellationToken);

    Task<KvDeleteResult> DeleteAsync(string ns, string key, string? requestId, CancellationToken cancellationToken);

    Task<KvIncrementResult> IncrementAsync(
        string ns, string key, long delta, long initialValue, double? ttlSeconds, string? requestId,
        CancellationToken cancellationToken);

    /// <summary>Bytes and entries a namespace holds (expired entries not yet purged included) against its quota.</summary>
    Task<KvUsageResult> UsageAsync(string ns, CancellationToken cancellationToken);
}
