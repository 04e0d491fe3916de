using KvWorker.Contracts;

namespace KvWorker.Storage;

/// <summary>
/// A storage provider for the operations. Requests reaching an adapter are
/// already validated (names, TTL range, value form, list limits and cursors); the
/// adapter enforces the semantics of values, TTL, versions, increments and quotas,
/// and reports rule violations by throwing <see cref="KvStoreException"/>. Time is
/// always the store's clock.
/// </summary>
/// <remarks>
/// Every write of a key (set, increment, touch) gives it a new positive version,
/// never used before for that key, also after a delete or an expiry; a write with
/// an <c>if_version</c> that does not match changes nothing and throws
/// <see cref="VersionConflictException"/>.
/// <para>
/// A mutation's <see cref="RequestIdentity"/> is null when the caller gave no
/// message_id. A mutation whose identity the adapter has applied before must
/// change nothing and return the first answer; one whose identity was used for
/// a different request must change nothing and fail with
/// <see cref="KvStoreException.IdentityReused"/>. The record of an identity is
/// written atomically with its mutation; rejected requests are not recorded,
/// so a retry is judged afresh.
/// </para>
/// </remarks>
public interface IKvStoreAdapter
{
    Task<KvGetResult> GetAsync(KvGet request, CancellationToken cancellationToken);

    /// <param name="value">The request's value in its stored form.</param>
    Task<KvSetResult> SetAsync(KvSet request, StoredValue value, RequestIdentity? identity, CancellationToken cancellationToken);

    Task<KvDeleteResult> DeleteAsync(KvDelete request, RequestIdentity? identity, CancellationToken cancellationToken);

    Task<KvIncrementResult> IncrementAsync(KvIncrement request, RequestIdentity? identity, CancellationToken cancellationToken);

    /// <summary>
    /// A page of live keys in key byte order (UTF-8, as <c>COLLATE "C"</c>), after the cursor's key
    /// (<see cref="ListCursor"/>); costs O(limit) whatever the namespace's size. The request's limit
    /// and prefix are validated; a null limit means <see cref="ListCursor.DefaultLimit"/>.
    /// </summary>
    Task<KvListResult> ListAsync(KvList request, CancellationToken cancellationToken);

    /// <summary>Sets a new TTL (null: persistent) on a live entry and gives it a new version; nothing for a missing or expired key.</summary>
    Task<KvTouchResult> TouchAsync(KvTouch request, RequestIdentity? identity, CancellationToken cancellationToken);

    /// <summary>Each key's kv_get result, in request order, read in one snapshot.</summary>
    Task<KvGetManyResult> GetManyAsync(KvGetMany request, CancellationToken cancellationToken);

    /// <summary>Bytes and entries a namespace holds (expired entries not yet purged included) against its quota.</summary>
    Task<KvUsageResult> UsageAsync(KvUsage request, CancellationToken cancellationToken);

    /// <summary>
    /// Removes expired entries (of one namespace, or all) and forgets request identities
    /// past their retention, publishing one <see cref="KvEntriesExpired"/> per namespace.
    /// Never runs beside another purge of the same store: the later one does nothing and says so.
    /// </summary>
    Task<KvPurgeResult> PurgeExpiredAsync(PurgeExpiredEntries request, CancellationToken cancellationToken);
}
