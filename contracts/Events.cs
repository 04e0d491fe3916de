using System.Globalization;
using System.Text.Json;
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
    [JsonPropertyName("at"), JsonConverter(typeof(EventTime))] public DateTimeOffset At { get; init; }
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
    [JsonPropertyName("at"), JsonConverter(typeof(EventTime))] public DateTimeOffset At { get; init; }
}

/// <summary>A namespace's usage crossed a configured fraction of its quota.</summary>
public record NamespaceQuotaThresholdReached
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("threshold")] public double Threshold { get; init; }
    [JsonPropertyName("quota_bytes")] public long QuotaBytes { get; init; }
    [JsonPropertyName("used_bytes")] public long UsedBytes { get; init; }
    [JsonPropertyName("at"), JsonConverter(typeof(EventTime))] public DateTimeOffset At { get; init; }
}

/// <summary>The purge removed expired entries of one namespace.</summary>
public record KvEntriesExpired
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("count")] public long Count { get; init; }
    [JsonPropertyName("bytes_freed")] public long BytesFreed { get; init; }
    [JsonPropertyName("at"), JsonConverter(typeof(EventTime))] public DateTimeOffset At { get; init; }
}

/// <summary>
/// An event's time as ISO 8601 with exactly six fraction digits (microseconds, as the stores keep
/// it), where System.Text.Json writes one to seven: Python 3.10's datetime.fromisoformat, which
/// subscribers use, reads only three or six.
/// </summary>
public sealed class EventTime : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", CultureInfo.InvariantCulture));
}
