using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvWorker.Contracts;

// One record per operation. The JSON names are the wire contract shared with
// plain AMQP clients; `required` makes a missing field a clear error.

public record KvGet
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

public record KvSet
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    /// <summary>Any JSON value, including null.</summary>
    [JsonPropertyName("value")] public required JsonElement Value { get; init; }
    /// <summary>Seconds until expiry; null makes the entry persistent.</summary>
    [JsonPropertyName("ttl_seconds")] public double? TtlSeconds { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

public record KvDelete
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}

public record KvIncrement
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

/// <summary>An operator's query (queue <c>kv_usage</c>): what a namespace holds against its quota.</summary>
public record KvUsage
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("provider")] public string? Provider { get; init; }
}
