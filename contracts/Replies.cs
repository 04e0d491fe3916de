using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvWorker.Contracts;

// The shapes of the original tool's result dictionaries. Optional members are
// left out of the JSON when absent (a stored JSON null is still written).

public record KvGetResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("found")] public bool Found { get; init; }
    /// <summary>The entry's value when found (a stored JSON null is a JsonElement of kind Null); null when not found.</summary>
    [JsonPropertyName("value"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), JsonConverter(typeof(JsonNullAsElement))]
    public JsonElement? Value { get; init; }
    /// <summary>Remaining seconds; present only when the entry has a TTL.</summary>
    [JsonPropertyName("ttl_seconds"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TtlSeconds { get; init; }
    /// <summary>The entry's version, when found.</summary>
    [JsonPropertyName("version"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Version { get; init; }
}

public record KvSetResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("value")] public JsonElement Value { get; init; }
    [JsonPropertyName("ttl_seconds"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TtlSeconds { get; init; }
    /// <summary>The version the write gave the entry.</summary>
    [JsonPropertyName("version")] public long Version { get; init; }
}

public record KvDeleteResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("deleted")] public bool Deleted { get; init; }
}

public record KvIncrementResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    /// <summary>A JSON integer, exact at any size (use GetInt64 within the 64-bit range).</summary>
    [JsonPropertyName("value")] public JsonElement Value { get; init; }
    [JsonPropertyName("ttl_seconds"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TtlSeconds { get; init; }
    /// <summary>The version the write gave the entry.</summary>
    [JsonPropertyName("version")] public long Version { get; init; }
}

public record KvListResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("keys")] public required IReadOnlyList<KvListedKey> Keys { get; init; }
    /// <summary>Pass it as <c>cursor</c> for the next page; absent on the last page.</summary>
    [JsonPropertyName("next_cursor"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? NextCursor { get; init; }
}

public record KvListedKey
{
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("size_bytes")] public long SizeBytes { get; init; }
    [JsonPropertyName("version")] public long Version { get; init; }
    [JsonPropertyName("ttl_seconds"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TtlSeconds { get; init; }
}

public record KvTouchResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    /// <summary>False for a missing or expired key: nothing was changed.</summary>
    [JsonPropertyName("found")] public bool Found { get; init; }
    [JsonPropertyName("ttl_seconds"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? TtlSeconds { get; init; }
    [JsonPropertyName("version"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Version { get; init; }
}

public record KvGetManyResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    /// <summary>One kv_get result per requested key, in request order.</summary>
    [JsonPropertyName("entries")] public required IReadOnlyList<KvGetResult> Entries { get; init; }
}

public record KvUsageResult
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    /// <summary>Bytes counted against the quota, including expired entries not yet purged.</summary>
    [JsonPropertyName("used_bytes")] public long UsedBytes { get; init; }
    [JsonPropertyName("entries")] public long Entries { get; init; }
    [JsonPropertyName("quota_bytes")] public long QuotaBytes { get; init; }
    [JsonPropertyName("global_quota_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? GlobalQuotaBytes { get; init; }
}

public record KvPurgeResult
{
    /// <summary>The namespace purged, or null for all of them.</summary>
    [JsonPropertyName("namespace"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Namespace { get; init; }
    /// <summary>False when another purge was running, so this one did nothing.</summary>
    [JsonPropertyName("ran")] public bool Ran { get; init; }
    /// <summary>
    /// False when the run stopped at its time budget with expired entries or old request identities
    /// left (or, on Redis, their events not yet published), which the next run removes; what it did
    /// remove is counted here all the same.
    /// </summary>
    [JsonPropertyName("complete")] public bool Complete { get; init; } = true;
    [JsonPropertyName("entries")] public long Entries { get; init; }
    [JsonPropertyName("bytes_freed")] public long BytesFreed { get; init; }
    /// <summary>Request identities forgotten because they were older than their retention.</summary>
    [JsonPropertyName("requests_forgotten")] public long RequestsForgotten { get; init; }
    /// <summary>What was removed, per namespace (each also published as a KvEntriesExpired event).</summary>
    [JsonPropertyName("namespaces")] public IReadOnlyList<KvEntriesExpired> Namespaces { get; init; } = [];
}

/// <summary>The reply to any request that failed: <c>{"error": {"code", "message"}}</c>.</summary>
public record KvError
{
    [JsonPropertyName("error")] public required KvErrorDetail Error { get; init; }
}

public record KvErrorDetail
{
    /// <summary>One of <see cref="KvErrorCodes"/>.</summary>
    [JsonPropertyName("code")] public required string Code { get; init; }
    [JsonPropertyName("message")] public required string Message { get; init; }
    /// <summary>With <c>VersionConflictError</c>: the live entry's version, absent when the key is.</summary>
    [JsonPropertyName("current_version"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? CurrentVersion { get; init; }
}

/// <summary>Error codes: the original tool's exception names, so callers can map them back.</summary>
public static class KvErrorCodes
{
    /// <summary>Invalid request: bad namespace, key, TTL, delta, malformed JSON, missing field, unknown provider.</summary>
    public const string KeyValueStoreError = nameof(KeyValueStoreError);
    public const string NamespaceQuotaExceededError = nameof(NamespaceQuotaExceededError);
    public const string GlobalQuotaExceededError = nameof(GlobalQuotaExceededError);
    /// <summary>Increment of a value that is not a JSON integer.</summary>
    public const string InvalidValueTypeError = nameof(InvalidValueTypeError);
    /// <summary>A value that cannot be stored as JSON.</summary>
    public const string ValueSerializationError = nameof(ValueSerializationError);
    public const string AccessDeniedError = nameof(AccessDeniedError);
    /// <summary>Storage unreachable after retries.</summary>
    public const string StoreUnavailableError = nameof(StoreUnavailableError);
    /// <summary>An <c>if_version</c> that does not match the live entry; the error carries <c>current_version</c>.</summary>
    public const string VersionConflictError = nameof(VersionConflictError);
}

/// <summary>
/// Reads a JSON null as a <see cref="JsonElement"/> of kind Null instead of as no value, so a
/// found entry that holds JSON null keeps it; a member that is absent stays null.
/// </summary>
public sealed class JsonNullAsElement : JsonConverter<JsonElement?>
{
    public override bool HandleNull => true;

    public override JsonElement? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonElement.ParseValue(ref reader);

    public override void Write(Utf8JsonWriter writer, JsonElement? value, JsonSerializerOptions options)
    {
        if (value is { } element) element.WriteTo(writer);
        else writer.WriteNullValue();
    }
}
