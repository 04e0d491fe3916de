using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>
/// A storage provider for the operations. Requests reaching an adapter are
/// already validated (names, TTL range, value form); the adapter enforces the
/// semantics of values, TTL, increments and quotas, and reports rule violations
/// by throwing <see cref="KvStoreException"/>. Time is always the store's clock.
/// </summary>
/// <remarks>
/// A mutation's <see cref="RequestIdentity"/> is null when the caller gave no
/// message_id. A mutation whose identity the adapter has applied before must
/// change nothing and return the first answer; one whose identity was used for
/// a different request must change nothing and fail with
/// <see cref="KvStoreException.IdentityReused"/>. The record of an identity is
/// written atomically with its mutation; rejected requests are not recorded,
/// so a retry is judged afresh.
/// </remarks>
public interface IKvStoreAdapter
{
    Task<KvGetResult> GetAsync(KvGet request, CancellationToken cancellationToken);

    /// <param name="value">The request's value in its stored form.</param>
    Task<KvSetResult> SetAsync(KvSet request, StoredValue value, RequestIdentity? identity, CancellationToken cancellationToken);

    Task<KvDeleteResult> DeleteAsync(KvDelete request, RequestIdentity? identity, CancellationToken cancellationToken);

    Task<KvIncrementResult> IncrementAsync(KvIncrement request, RequestIdentity? identity, CancellationToken cancellationToken);

    /// <summary>Bytes and entries a namespace holds (expired entries not yet purged included) against its quota.</summary>
    Task<KvUsageResult> UsageAsync(KvUsage request, CancellationToken cancellationToken);

    /// <summary>
    /// Removes expired entries (of one namespace, or all) and forgets request identities
    /// past their retention, publishing one <see cref="KvEntriesExpired"/> per namespace.
    /// Never runs beside another purge of the same store: the later one does nothing and says so.
    /// </summary>
    Task<KvPurgeResult> PurgeExpiredAsync(PurgeExpiredEntries request, CancellationToken cancellationToken);
}
