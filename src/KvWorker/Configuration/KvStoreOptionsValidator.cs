using KvWorker.Contracts;
using Microsoft.Extensions.Options;

namespace KvWorker.Configuration;

/// <summary>Checks the <c>tools:kv_store</c> block at start-up; every failure names its key.</summary>
public sealed class KvStoreOptionsValidator(IConfiguration configuration, IEnumerable<Storage.KvStoreAdapterRegistration> adapters)
    : IValidateOptions<KvStoreOptions>
{
    public ValidateOptionsResult Validate(string? name, KvStoreOptions options)
    {
        var failures = new List<string>();
        void Require(bool ok, string key, string message)
        {
            if (!ok) failures.Add($"{KvStoreOptions.Section}:{key} {message}");
        }

        var postgres = options.Adapters.Postgres;
        var registered = adapters.Select(a => a.Name).Order().ToList();
        Require(registered.Contains(options.DefaultAdapter), "default_adapter", $"must name a registered adapter ({string.Join(", ", registered)}), not '{options.DefaultAdapter}'");
        try
        {
            PostgresConnection.Resolve(postgres, configuration);
        }
        catch (InvalidOperationException ex)
        {
            failures.Add(ex.Message);
        }
        Require(postgres.NamespaceQuotaBytes > 0, "adapters:postgres:namespace_quota_bytes", "must be a positive number of bytes (ATLAS_KV_NAMESPACE_QUOTA_BYTES)");
        Require(postgres.GlobalQuotaBytes is null or > 0, "adapters:postgres:global_quota_bytes", "must be a positive number of bytes, or unset for no global limit (ATLAS_KV_GLOBAL_QUOTA_BYTES)");
        Require(postgres.Pool.Size > 0, "adapters:postgres:pool:size", "must be positive (ATLAS_KV_POOL_SIZE)");
        Require(postgres.Pool.MaxOverflow >= 0, "adapters:postgres:pool:max_overflow", "must be zero or more (ATLAS_KV_MAX_OVERFLOW)");
        Require(postgres.Pool.Timeout > 0, "adapters:postgres:pool:timeout", "must be a positive number of seconds (ATLAS_KV_POOL_TIMEOUT)");
        Require(postgres.EffectiveQuotaThresholds.All(t => t is > 0 and <= 1), "adapters:postgres:quota_thresholds", "must be fractions of the quota, each above 0 and at most 1");
        Require(postgres.PurgeIntervalSeconds > 0 && double.IsFinite(postgres.PurgeIntervalSeconds), "adapters:postgres:purge_interval_seconds", "must be a positive number of seconds");
        Require(postgres.PurgeBatchSize is > 0 and <= 100_000, "adapters:postgres:purge_batch_size", "must be between 1 and 100000");
        Require(postgres.RequestRetentionSeconds > 0 && double.IsFinite(postgres.RequestRetentionSeconds), "adapters:postgres:request_retention_seconds", "must be a positive number of seconds");
        Require(postgres.GroupCommit.MaxCommands is > 0 and <= 10_000, "adapters:postgres:group_commit:max_commands", "must be between 1 and 10000");
        Require(postgres.GroupCommit.Transactions > 0 && postgres.GroupCommit.Transactions < postgres.Pool.Size + postgres.Pool.MaxOverflow,
            "adapters:postgres:group_commit:transactions", "must be at least 1 and less than the pool's size + max_overflow");
        Require(postgres.OutboxPollIntervalMs > 0, "adapters:postgres:outbox_poll_interval_ms", "must be a positive number of milliseconds");

        Require(options.RequestTimeoutSeconds > 0 && double.IsFinite(options.RequestTimeoutSeconds), "request_timeout_seconds", "must be a positive number of seconds");

        var limits = options.Limits;
        Require(limits.MaxNamespaceLength > 0, "limits:max_namespace_length", "must be positive");
        Require(limits.MaxKeyLength > 0, "limits:max_key_length", "must be positive");
        Require(limits.MaxTtlSeconds > 0 && double.IsFinite(limits.MaxTtlSeconds), "limits:max_ttl_seconds", "must be a positive number of seconds");
        Require(limits.MaxValueDepth is > 0 and <= 256, "limits:max_value_depth", "must be between 1 and 256");
        Require(limits.MaxIntegerDigits is >= 20 and <= 100_000, "limits:max_integer_digits", "must be between 20 and 100000");

        foreach (var (personaName, persona) in options.Personas)
        {
            foreach (var (flag, i) in persona.Flags.Select((flag, i) => (flag, i)))
                Require(flag is KvStoreManifest.ReadFlag or KvStoreManifest.WriteFlag, $"personas:{personaName}:flags:{i}",
                    $"must be {KvStoreManifest.ReadFlag} or {KvStoreManifest.WriteFlag}, not '{flag}'");
            foreach (var (pattern, i) in persona.Namespaces.Select((pattern, i) => (pattern, i)))
                Require(!string.IsNullOrEmpty(pattern), $"personas:{personaName}:namespaces:{i}", "must be a non-empty namespace pattern");
            Require(persona.Provider is null || registered.Contains(persona.Provider), $"personas:{personaName}:provider",
                $"must name a registered adapter ({string.Join(", ", registered)}), not '{persona.Provider}'");
        }
        void RequireGrant(string key, IdentityOptions grant)
        {
            foreach (var (persona, i) in grant.Personas.Select((persona, i) => (persona, i)))
                Require(options.Personas.ContainsKey(persona), $"{key}:personas:{i}",
                    $"must name a persona configured under {KvStoreOptions.Section}:personas, not '{persona}'");
            Require(grant.DefaultPersona is null || grant.Personas.Contains(grant.DefaultPersona), $"{key}:default_persona",
                $"must be one of {KvStoreOptions.Section}:{key}:personas, not '{grant.DefaultPersona}'");
        }
        foreach (var (identity, grant) in options.Identities) RequireGrant($"identities:{identity}", grant);
        if (options.Anonymous is { } anonymous) RequireGrant("anonymous", anonymous);

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
