using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>
/// A storage provider for the four operations. Requests reaching an adapter are
/// already validated (names, TTL range); the adapter enforces the semantics of
/// values, TTL, increments and quotas, and reports rule violations by throwing
/// <see cref="KvStoreException"/>.
/// </summary>
public interface IKvStoreAdapter
{
    Task<KvGetResult> GetAsync(string ns, string key, CancellationToken cancellationToken);

    Task<KvSetResult> SetAsync(string ns, string key, StoredValue value, double? ttlSeconds, CancellationToken cancellationToken);

    Task<KvDeleteResult> DeleteAsync(string ns, string key, CancellationToken cancellationToken);

    Task<KvIncrementResult> IncrementAsync(
        string ns, string key, long delta, long initialValue, double? ttlSeconds, CancellationToken cancellationToken);
}
