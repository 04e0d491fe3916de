using KvWorker.Storage;
using Microsoft.Extensions.Configuration;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>The <c>tools:kv_store:adapters:redis</c> block; the <c>redis</c> provider exists only when <see cref="Url"/> is set.</summary>
public sealed class RedisAdapterOptions
{
    public const string Section = "tools:kv_store:adapters:redis";
    public const long DefaultNamespaceQuotaBytes = 1024 * 1024;

    /// <summary>A StackExchange.Redis configuration string: <c>127.0.0.1:6379</c>, <c>host:6379,password=…,ssl=true,defaultDatabase=2</c>.</summary>
    [ConfigurationKeyName("url")]
    public string? Url { get; set; }

    /// <summary>
    /// Put before every key the adapter writes, so that several stores can share one Redis database.
    /// Without braces: the hash tags that keep a namespace's keys in one cluster slot follow it.
    /// </summary>
    [ConfigurationKeyName("key_prefix")]
    public string KeyPrefix { get; set; } = "kv:";

    [ConfigurationKeyName("namespace_quota_bytes")]
    public long NamespaceQuotaBytes { get; set; } = DefaultNamespaceQuotaBytes;

    /// <summary>Null disables the global limit.</summary>
    [ConfigurationKeyName("global_quota_bytes")]
    public long? GlobalQuotaBytes { get; set; }

    /// <summary>
    /// Fractions of the namespace quota whose crossing publishes NamespaceQuotaThresholdReached;
    /// unset means 0.8 and 1.0.
    /// </summary>
    [ConfigurationKeyName("quota_thresholds")]
    public double[]? QuotaThresholds { get; set; }

    public double[] EffectiveQuotaThresholds => QuotaThresholds ?? [0.8, 1.0];

    /// <summary>Expired entries one purge script removes from a namespace, so no script runs long.</summary>
    [ConfigurationKeyName("purge_batch_size")]
    public int PurgeBatchSize { get; set; } = 1000;

    /// <summary>How long a mutation's request identity (message_id) is remembered, so that a redelivery changes nothing.</summary>
    [ConfigurationKeyName("request_retention_seconds")]
    public double RequestRetentionSeconds { get; set; } = 24 * 3600;

    /// <summary>Every failure as "key message", the key in full.</summary>
    public IEnumerable<string> Validate()
    {
        var failures = new List<string>();
        void Require(bool ok, string key, string message)
        {
            if (!ok) failures.Add($"{Section}:{key} {message}");
        }

        if (string.IsNullOrWhiteSpace(Url))
        {
            failures.Add($"{Section}:url is required, e.g. 127.0.0.1:6379");
        }
        else
        {
            try
            {
                var parsed = ConfigurationOptions.Parse(Url);
                Require(parsed.EndPoints.Count > 0, "url", $"names no Redis server: '{Url}'");
            }
            catch (ArgumentException ex)
            {
                failures.Add($"{Section}:url is not a StackExchange.Redis configuration string (host:port[,option=value...]): {ex.Message}");
            }
        }
        Require(!string.IsNullOrEmpty(KeyPrefix), "key_prefix", "must not be empty");
        Require(KeyPrefix.IndexOfAny(['{', '}']) < 0, "key_prefix", "must not contain '{' or '}' (the adapter's hash tags follow it)");
        Require(NamespaceQuotaBytes > 0, "namespace_quota_bytes", "must be a positive number of bytes");
        Require(GlobalQuotaBytes is null or > 0, "global_quota_bytes", "must be a positive number of bytes, or unset for no global limit");
        Require(EffectiveQuotaThresholds.All(t => t is > 0 and <= 1), "quota_thresholds", "must be fractions of the quota, each above 0 and at most 1");
        Require(PurgeBatchSize is > 0 and <= 100_000, "purge_batch_size", "must be between 1 and 100000");
        Require(RequestRetentionSeconds is >= 1 and <= KvLimits.MaxConfigurableSeconds,
            "request_retention_seconds", "must be a number of seconds, at least 1 and at most 3153600000 (100 years)");
        return failures;
    }

    /// <summary>Whether configuration names a Redis server, which is what registers the <c>redis</c> provider.</summary>
    public static bool IsConfigured(IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(configuration[Section + ":url"]);
}
