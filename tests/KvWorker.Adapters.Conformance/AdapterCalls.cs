using KvWorker.Contracts;
using KvWorker.Storage;

namespace KvWorker.Adapters.Conformance;

/// <summary>
/// The adapter's operations in a positional form, as the tests call them: each
/// builds the request the worker would pass, and for a mutation with a request
/// id the identity the worker would derive from it.
/// </summary>
public static class AdapterCalls
{
    public static Task<KvGetResult> GetAsync(this IKvStoreAdapter adapter, string ns, string key, CancellationToken cancellationToken) =>
        adapter.GetAsync(new KvGet { Namespace = ns, Key = key }, cancellationToken);

    public static Task<KvSetResult> SetAsync(
        this IKvStoreAdapter adapter, string ns, string key, StoredValue value, double? ttlSeconds, string? requestId,
        CancellationToken cancellationToken, long? ifVersion = null)
    {
        var request = new KvSet { Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = ttlSeconds, IfVersion = ifVersion };
        return adapter.SetAsync(request, value, Identity(requestId, KvOperations.Set, ns, key, request), cancellationToken);
    }

    public static Task<KvDeleteResult> DeleteAsync(
        this IKvStoreAdapter adapter, string ns, string key, string? requestId, CancellationToken cancellationToken, long? ifVersion = null)
    {
        var request = new KvDelete { Namespace = ns, Key = key, IfVersion = ifVersion };
        return adapter.DeleteAsync(request, Identity(requestId, KvOperations.Delete, ns, key, request), cancellationToken);
    }

    public static Task<KvTouchResult> TouchAsync(
        this IKvStoreAdapter adapter, string ns, string key, double? ttlSeconds, string? requestId, CancellationToken cancellationToken)
    {
        var request = new KvTouch { Namespace = ns, Key = key, TtlSeconds = ttlSeconds };
        return adapter.TouchAsync(request, Identity(requestId, KvOperations.Touch, ns, key, request), cancellationToken);
    }

    public static Task<KvListResult> ListAsync(
        this IKvStoreAdapter adapter, string ns, string? prefix, int? limit, string? cursor, CancellationToken cancellationToken) =>
        adapter.ListAsync(new KvList { Namespace = ns, Prefix = prefix, Limit = limit, Cursor = cursor }, cancellationToken);

    public static Task<KvGetManyResult> GetManyAsync(
        this IKvStoreAdapter adapter, string ns, IReadOnlyList<string> keys, CancellationToken cancellationToken) =>
        adapter.GetManyAsync(new KvGetMany { Namespace = ns, Keys = keys }, cancellationToken);

    public static Task<KvIncrementResult> IncrementAsync(
        this IKvStoreAdapter adapter, string ns, string key, long delta, long initialValue, double? ttlSeconds, string? requestId,
        CancellationToken cancellationToken)
    {
        var request = new KvIncrement { Namespace = ns, Key = key, Delta = delta, InitialValue = initialValue, TtlSeconds = ttlSeconds };
        return adapter.IncrementAsync(request, Identity(requestId, KvOperations.Increment, ns, key, request), cancellationToken);
    }

    public static Task<KvUsageResult> UsageAsync(this IKvStoreAdapter adapter, string ns, CancellationToken cancellationToken) =>
        adapter.UsageAsync(new KvUsage { Namespace = ns }, cancellationToken);

    private static RequestIdentity? Identity(string? requestId, KvOperation operation, string ns, string key, IKvRequest request) =>
        requestId is null ? null : RequestIdentity.Of(requestId, operation, ns, key, request);
}
