using System.Text.Json.Serialization;

namespace KvWorker.Contracts;

// Published on fanout exchanges named like the record.

/// <summary>A write was rejected because it would push a namespace over its quota.</summary>
public record NamespaceQuotaExceeded
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("quota_bytes")] public long QuotaBytes { get; init; }
    [JsonPropertyName("used_bytes")] public long UsedBytes { get; init; }
    [JsonPropertyName("attempted_bytes")] public long AttemptedBytes { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("at")] public DateTimeOffset At { get; init; }
}

/// <summary>A write was rejected because it would push the whole store over the global quota.</summary>
public record GlobalQuotaExceeded
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("key")] public required string Key { get; init; }
    [JsonPropertyName("quota_bytes")] public long QuotaBytes { get; init; }
    [JsonPropertyName("used_bytes")] public long UsedBytes { get; init; }
    [JsonPropertyName("attempted_bytes")] public long AttemptedBytes { get; init; }
    [JsonPropertyName("persona")] public string? Persona { get; init; }
    [JsonPropertyName("at")] public DateTimeOffset At { get; init; }
}

/// <summary>A namespace's usage crossed a configured fraction of its quota.</summary>
public record NamespaceQuotaThresholdReached
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("threshold")] public double Threshold { get; init; }
    [JsonPropertyName("quota_bytes")] public long QuotaBytes { get; init; }
    [JsonPropertyName("used_bytes")] public long UsedBytes { get; init; }
    [JsonPropertyName("at")] public DateTimeOffset At { get; init; }
}

/// <summary>The purge removed expired entries of one namespace.</summary>
public record KvEntriesExpired
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("count")] public long Count { get; init; }
    [JsonPropertyName("bytes_freed")] public long BytesFreed { get; init; }
    [JsonPropertyName("at")] public DateTimeOffset At { get; init; }
}
