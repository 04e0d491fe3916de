using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvWorker.Contracts;

// One record per operation. The JSON names are the wire contract shared with
// plain AMQP clients; `required` makes a missing field a clear error.

/// <summary>What every request carries: the namespace it is about, and optionally the persona and provider it names.</summary>
public interface IKvRequest
{
    string? Namespace { get; }
    string? Persona { get; }
    string? Provider { get; }
}

public record KvGet : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

public record KvSet : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    /// <summary>Any JSON value, including null.</summary>
    [JsonPropertyName("value")] public required JsonElement Value { get; init; }
    /// <summary>Seconds until expiry; null makes the entry persistent.</summary>
    [JsonPropertyName("ttl_seconds")] public double? TtlSeconds { get; init; }
    /// <summary>Compare-and-set: write only if the live entry has this version; 0 only if the key is absent or expired.</summary>
    [JsonPropertyName("if_version")] public long? IfVersion { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

public record KvDelete : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    /// <summary>Delete only if the live entry has this version; 0 only if the key is absent or expired.</summary>
    [JsonPropertyName("if_version")] public long? IfVersion { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

public record KvIncrement : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("delta")] public long Delta { get; init; } = 1;
    /// <summary>The value the counter starts from when the key is missing or expired.</summary>
    [JsonPropertyName("initial_value")] public long InitialValue { get; init; }
    /// <summary>Seconds until expiry; null keeps the entry's current TTL.</summary>
    [JsonPropertyName("ttl_seconds")] public double? TtlSeconds { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

/// <summary>A page of a namespace's live keys, in key byte order.</summary>
public record KvList : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    /// <summary>Only keys that start with this text.</summary>
    [JsonPropertyName("prefix")] public string? Prefix { get; init; }
    /// <summary>Keys per page: 1 to 1000, default 100.</summary>
    [JsonPropertyName("limit")] public int? Limit { get; init; }
    /// <summary>The <c>next_cursor</c> of the previous page; absent for the first.</summary>
    [JsonPropertyName("cursor")] public string? Cursor { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

/// <summary>A new TTL for a live entry, without rewriting its value.</summary>
public record KvTouch : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    /// <summary>Seconds until expiry, counted from now; null makes the entry persistent. Required, so that forgetting it never makes an entry persistent.</summary>
    [JsonPropertyName("ttl_seconds"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public required double? TtlSeconds { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

/// <summary>Several keys of one namespace, read in one snapshot.</summary>
public record KvGetMany : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    /// <summary>At most 100 keys; duplicates are answered once per mention.</summary>
    [JsonPropertyName("keys")] public required IReadOnlyList<string> Keys { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

/// <summary>An operator's query (queue <c>kv_usage</c>): what a namespace holds against its quota.</summary>
public record KvUsage : IKvRequest
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

/// <summary>
/// Operator command (queue <c>kv_purge</c>): remove expired entries now, of one
/// namespace or of all. The worker also sends it once per purge interval for the
/// whole deployment; any replica may take it, and two purges never overlap.
/// </summary>
public record PurgeExpiredEntries : IKvRequest
{
    /// <summary>Null purges every namespace.</summary>
    [JsonPropertyName("namespace")] public string? Namespace { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}
