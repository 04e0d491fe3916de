using System.Globalization;

namespace KvWorker.Configuration;

/// <summary>
/// The original tool's environment variables. They are fallbacks: added as the
/// lowest-priority configuration source, so a key present in appsettings.json
/// or config.yaml wins, and <c>tools__kv_store__...</c> variables win over both.
/// </summary>
public static class AtlasEnvironment
{
    private const string Postgres = KvWorker.Postgres.PostgresAdapterOptions.Section;

    public static readonly IReadOnlyDictionary<string, string> KeysByVariable = new Dictionary<string, string>
    {
        ["ATLAS_KV_STORE_URL"] = $"{Postgres}:url",
        ["ATLAS_KV_REUSE_CONVERSATION"] = $"{Postgres}:reuse_conversation_store",
        ["ATLAS_KV_NAMESPACE_QUOTA_BYTES"] = $"{Postgres}:namespace_quota_bytes",
        ["ATLAS_KV_GLOBAL_QUOTA_BYTES"] = $"{Postgres}:global_quota_bytes",
        ["ATLAS_KV_POOL_SIZE"] = $"{Postgres}:pool:size",
        ["ATLAS_KV_MAX_OVERFLOW"] = $"{Postgres}:pool:max_overflow",
        ["ATLAS_KV_POOL_TIMEOUT"] = $"{Postgres}:pool:timeout",
    };

    /// <summary>Adds config.yaml (above the appsettings files, below user secrets) and the ATLAS_KV_* fallbacks (below everything).</summary>
    public static void AddKvStoreConfiguration(
        this IConfigurationManager configuration, string configYamlDirectory, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var sources = configuration.Sources;
        var yaml = new ConfigurationBuilder()
            .AddYamlFile(new Microsoft.Extensions.FileProviders.PhysicalFileProvider(configYamlDirectory), "config.yaml", optional: true, reloadOnChange: false)
            .Sources[0];
        var lastAppSettings = sources.Select((source, index) => (source, index))
            .LastOrDefault(s => s.source is Microsoft.Extensions.Configuration.Json.JsonConfigurationSource { Path: { } path }
                && path.StartsWith("appsettings", StringComparison.OrdinalIgnoreCase)).index;
        sources.Insert(lastAppSettings + 1, yaml);

        var fallbacks = KeysByVariable
            .Select(pair => (pair.Value, environment(pair.Key) is { Length: > 0 } value ? AsTheOriginalToolReadIt(pair.Key, value) : null))
            .Where(pair => pair.Item2 is not null)
            .ToDictionary(pair => pair.Item1, pair => pair.Item2);
        sources.Insert(0, new Source(fallbacks));
    }

    /// <summary>
    /// A variable's value as the original tool read it, where .NET's binding would read it otherwise
    /// or refuse it; null when the original took it as unset.
    /// </summary>
    private static string? AsTheOriginalToolReadIt(string variable, string value) => variable switch
    {
        // On for 1, true, yes or on; off for anything else.
        "ATLAS_KV_REUSE_CONVERSATION" => value.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on" ? "true" : "false",
        // Zero or less: no global limit.
        "ATLAS_KV_GLOBAL_QUOTA_BYTES" when long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var bytes) && bytes <= 0 => null,
        _ => value,
    };

    /// <summary>The ATLAS_KV_* fallbacks as a configuration source of their own, so errors can name the variable that was set.</summary>
    private sealed class Source(Dictionary<string, string?> values) : IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(values);
    }

    public sealed class Provider : ConfigurationProvider
    {
        public Provider(Dictionary<string, string?> values)
        {
            foreach (var (key, value) in values) Data[key] = value;
        }
    }
}
