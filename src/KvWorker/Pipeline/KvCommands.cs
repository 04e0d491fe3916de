using KvWorker.Contracts;
using KvWorker.Storage;
using Microsoft.Extensions.Options;

namespace KvWorker.Pipeline;

/// <summary>A validated request, ready to run on an adapter (retried as a whole on transient faults).</summary>
public sealed record KvCommand(string? Namespace, string? Key, Func<IKvStoreAdapter, CancellationToken, Task<object>> RunAsync);

/// <summary>
/// How each operation's request is checked and run: the one place that knows, per
/// operation, which fields to validate against <c>tools:kv_store:limits</c> and
/// which adapter method serves it. A mutation sent with a message_id carries its
/// <see cref="RequestIdentity"/> to the adapter.
/// </summary>
public sealed class KvCommands(IOptions<KvLimits> options)
{
    /// <summary>The most keys one kv_get_many may read.</summary>
    public const int MaxGetManyKeys = 100;

    private KvLimits Limits => options.Value;

    /// <summary>Throws <c>KeyValueStoreError</c> (or <c>ValueSerializationError</c> for a value) for an invalid request.</summary>
    public KvCommand Prepare(IKvRequest request, string? messageId)
    {
        switch (request)
        {
            case KvGet get:
                CheckKey(get.Namespace, get.Key);
                return new(get.Namespace, get.Key, (adapter, ct) => Box(adapter.GetAsync(get, ct)));
            case KvSet set:
                CheckKey(set.Namespace, set.Key);
                CheckTtl(set.TtlSeconds);
                CheckVersion(set.IfVersion);
                var value = StoredValue.From(set.Value, Limits.MaxValueDepth);
                return Mutation(KvOperations.Set, set, set.Key, messageId, (adapter, identity, ct) => Box(adapter.SetAsync(set, value, identity, ct)));
            case KvDelete delete:
                CheckKey(delete.Namespace, delete.Key);
                CheckVersion(delete.IfVersion);
                return Mutation(KvOperations.Delete, delete, delete.Key, messageId, (adapter, identity, ct) => Box(adapter.DeleteAsync(delete, identity, ct)));
            case KvIncrement increment:
                CheckKey(increment.Namespace, increment.Key);
                CheckTtl(increment.TtlSeconds);
                return Mutation(KvOperations.Increment, increment, increment.Key, messageId, (adapter, identity, ct) => Box(adapter.IncrementAsync(increment, identity, ct)));
            case KvTouch touch:
                CheckKey(touch.Namespace, touch.Key);
                CheckTtl(touch.TtlSeconds);
                return Mutation(KvOperations.Touch, touch, touch.Key, messageId, (adapter, identity, ct) => Box(adapter.TouchAsync(touch, identity, ct)));
            case KvList list:
                CheckName(list.Namespace, "namespace", Limits.MaxNamespaceLength);
                if (!string.IsNullOrEmpty(list.Prefix)) CheckName(list.Prefix, "prefix", Limits.MaxKeyLength);
                if (list.Limit is not (null or (>= 1 and <= ListCursor.MaxLimit)))
                    throw KvStoreException.InvalidRequest($"limit must be between 1 and {ListCursor.MaxLimit}, not {list.Limit}");
                if (list.Cursor is not null) ListCursor.Decode(list.Cursor);
                return new(list.Namespace, null, (adapter, ct) => Box(adapter.ListAsync(list, ct)));
            case KvGetMany getMany:
                CheckName(getMany.Namespace, "namespace", Limits.MaxNamespaceLength);
                if (getMany.Keys is null)
                    throw KvStoreException.InvalidRequest("keys must be a list of key names");
                if (getMany.Keys.Count > MaxGetManyKeys)
                    throw KvStoreException.InvalidRequest($"keys must name at most {MaxGetManyKeys} keys, not {getMany.Keys.Count}");
                foreach (var key in getMany.Keys) CheckName(key, "every key", Limits.MaxKeyLength);
                return new(getMany.Namespace, null, (adapter, ct) => Box(adapter.GetManyAsync(getMany, ct)));
            case KvUsage usage:
                CheckName(usage.Namespace, "namespace", Limits.MaxNamespaceLength);
                return new(usage.Namespace, null, (adapter, ct) => Box(adapter.UsageAsync(usage, ct)));
            case PurgeExpiredEntries purge:
                if (purge.Namespace is not null) CheckName(purge.Namespace, "namespace", Limits.MaxNamespaceLength);
                return new(purge.Namespace, null, (adapter, ct) => Box(adapter.PurgeExpiredAsync(purge, ct)));
            default:
                throw new InvalidOperationException($"no command is defined for {request.GetType().Name}");
        }
    }

    /// <summary>A write of one key, with the identity its message_id gives it (none without one).</summary>
    private static KvCommand Mutation(KvOperation operation, IKvRequest request, string key, string? messageId,
        Func<IKvStoreAdapter, RequestIdentity?, CancellationToken, Task<object>> run)
    {
        // An AMQP message_id may hold any bytes, but a NUL cannot be stored (PostgreSQL's text refuses it).
        if (messageId?.Contains('\0', StringComparison.Ordinal) == true)
            throw KvStoreException.InvalidRequest("message_id must not contain U+0000 (NUL): send the request with another");
        var identity = messageId is null ? null : RequestIdentity.Of(messageId, operation, request.Namespace!, key, request);
        return new(request.Namespace, key, (adapter, ct) => run(adapter, identity, ct));
    }

    private static async Task<object> Box<T>(Task<T> task) where T : class => await task;

    private void CheckKey(string? ns, string? key)
    {
        CheckName(ns, "namespace", Limits.MaxNamespaceLength);
        CheckName(key, "key", Limits.MaxKeyLength);
    }

    private static void CheckName(string? value, string field, int maxLength)
    {
        if (string.IsNullOrEmpty(value))
            throw KvStoreException.InvalidRequest($"{field} must be a non-empty string");
        // Characters as callers count them (a character beyond U+FFFF is two UTF-16 code units):
        // more than twice as many code units is too long whatever they hold.
        if (value.Length > 2L * maxLength)
            throw KvStoreException.InvalidRequest($"{field} is longer than {maxLength} characters");
        var characters = 0;
        for (var i = 0; i < value.Length; i++, characters++)
        {
            var c = value[i];
            if (char.IsControl(c))
                throw KvStoreException.InvalidRequest($"{field} must not contain control characters (U+{(int)c:X4} at {i})");
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                i++;
            else if (char.IsSurrogate(c))
                throw KvStoreException.InvalidRequest($"{field} is not valid Unicode (lone surrogate at {i})");
        }
        if (characters > maxLength)
            throw KvStoreException.InvalidRequest($"{field} is longer than {maxLength} characters");
    }

    private static void CheckVersion(long? ifVersion)
    {
        if (ifVersion < 0)
            throw KvStoreException.InvalidRequest($"if_version must be a version (1 or more) or 0 for \"only if absent\", not {ifVersion}");
    }

    private void CheckTtl(double? ttlSeconds)
    {
        if (ttlSeconds is not { } ttl) return;
        if (!double.IsFinite(ttl) || ttl <= 0)
            throw KvStoreException.InvalidRequest("ttl_seconds must be a positive, finite number of seconds");
        if (ttl > Limits.MaxTtlSeconds)
            throw KvStoreException.InvalidRequest($"ttl_seconds must not exceed {Limits.MaxTtlSeconds} seconds");
    }
}
