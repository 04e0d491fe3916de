using KvWorker.Configuration;
using KvWorker.Storage;

namespace KvWorker.Messaging;

/// <summary>Checks what every adapter relies on: names and TTLs. Values are checked by <see cref="StoredValue"/>.</summary>
public static class RequestValidation
{
    public static void CheckName(string? value, string field, int maxLength)
    {
        if (string.IsNullOrEmpty(value))
            throw KvStoreException.InvalidRequest($"{field} must be a non-empty string");
        if (value.Length > maxLength)
            throw KvStoreException.InvalidRequest($"{field} is longer than {maxLength} characters");
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsControl(c))
                throw KvStoreException.InvalidRequest($"{field} must not contain control characters (U+{(int)c:X4} at {i})");
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                i++;
            else if (char.IsSurrogate(c))
                throw KvStoreException.InvalidRequest($"{field} is not valid Unicode (lone surrogate at {i})");
        }
    }

    public static void CheckTtl(double? ttlSeconds, KvLimitsOptions limits)
    {
        if (ttlSeconds is not { } ttl) return;
        if (!double.IsFinite(ttl) || ttl <= 0)
            throw KvStoreException.InvalidRequest("ttl_seconds must be a positive, finite number of seconds");
        if (ttl > limits.MaxTtlSeconds)
            throw KvStoreException.InvalidRequest($"ttl_seconds must not exceed {limits.MaxTtlSeconds} seconds");
    }
}
