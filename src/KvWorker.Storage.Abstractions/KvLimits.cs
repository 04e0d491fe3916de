using KvWorker.Contracts;
using Microsoft.Extensions.Configuration;

namespace KvWorker.Storage;

/// <summary>The <c>tools:kv_store:limits</c> block: bounds on what a request may hold, the same for every adapter.</summary>
public sealed class KvLimits
{
    public const string Section = "tools:kv_store:limits";

    [ConfigurationKeyName("max_namespace_length")]
    public int MaxNamespaceLength { get; set; } = 128;

    [ConfigurationKeyName("max_key_length")]
    public int MaxKeyLength { get; set; } = 512;

    /// <summary>
    /// The longest any period the stores keep may be configured to be, a TTL or a request's retention:
    /// 100 years. Longer ones run past what PostgreSQL's intervals and timestamps hold.
    /// </summary>
    public const double MaxConfigurableSeconds = 100 * 365 * 86400.0;

    /// <summary>Longest TTL accepted; default one year.</summary>
    [ConfigurationKeyName("max_ttl_seconds")]
    public double MaxTtlSeconds { get; set; } = 365 * 24 * 3600;

    /// <summary>Deepest nesting of arrays and objects in a stored value.</summary>
    [ConfigurationKeyName("max_value_depth")]
    public int MaxValueDepth { get; set; } = 32;

    /// <summary>Longest counter, in decimal digits; increments past it fail with InvalidValueTypeError.</summary>
    [ConfigurationKeyName("max_integer_digits")]
    public int MaxIntegerDigits { get; set; } = 1000;

    /// <summary>Every failure as "key message", the key relative to <see cref="Section"/>.</summary>
    public IEnumerable<string> Validate()
    {
        if (MaxNamespaceLength <= 0) yield return "max_namespace_length must be positive";
        if (MaxKeyLength <= 0) yield return "max_key_length must be positive";
        if (MaxTtlSeconds is not (> 0 and <= MaxConfigurableSeconds)) yield return "max_ttl_seconds must be a positive number of seconds, at most 3153600000 (100 years)";
        if (MaxValueDepth is not (> 0 and <= KvJsonDepth.MaxValue)) yield return $"max_value_depth must be between 1 and {KvJsonDepth.MaxValue}";
        if (MaxIntegerDigits is not (>= 20 and <= 100_000)) yield return "max_integer_digits must be between 20 and 100000";
    }
}
