using KvWorker.Contracts;
using KvWorker.Storage;
using Microsoft.Extensions.Configuration;

namespace KvWorker.Configuration;

/// <summary>Checks the worker's part of the <c>tools:kv_store</c> block at start-up; every failure names its key.</summary>
public static class KvStoreOptionsValidator
{
    public static IEnumerable<string> Validate(KvStoreOptions options, IEnumerable<KvStoreAdapterRegistration> adapters)
    {
        var failures = new List<string>();
        void Require(bool ok, string key, string message)
        {
            if (!ok) failures.Add($"{KvStoreOptions.Section}:{key} {message}");
        }

        var registered = adapters.Select(a => a.Name).Order().ToList();
        Require(registered.Contains(options.DefaultAdapter), "default_adapter", $"must name a registered adapter ({string.Join(", ", registered)}), not '{options.DefaultAdapter}'");
        // A day at most: a request's budget is a timer, and no request is worth waiting on for longer.
        Require(options.RequestTimeoutSeconds is > 0 and <= 86400, "request_timeout_seconds", "must be a positive number of seconds, at most 86400");

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
        return failures;
    }

    /// <summary>
    /// The policy's lists written as a single value (<c>namespaces: "team-a-*"</c>), which .NET's
    /// binder drops without a word: the persona would lose its namespace patterns and use every
    /// namespace. An empty <c>namespaces</c> list binds as no patterns, every namespace, too, so it
    /// is refused rather than read as the opposite of what it says.
    /// </summary>
    public static IEnumerable<string> ListsWrittenAsValues(IConfiguration configuration)
    {
        var kvStore = configuration.GetSection(KvStoreOptions.Section);
        var lists = kvStore.GetSection("personas").GetChildren()
            .SelectMany(persona => new[] { persona.GetSection("flags"), persona.GetSection("namespaces") })
            .Concat(kvStore.GetSection("identities").GetChildren().Select(identity => identity.GetSection("personas")))
            .Append(kvStore.GetSection("anonymous:personas"));
        foreach (var list in lists)
        {
            foreach (var failure in OptionsValidation.DroppedFromList(list)) yield return failure;
            if (list is { Value: "", Key: "namespaces" })
                yield return $"{list.Path} is an empty list, which would allow every namespace: list the patterns, or leave the key out to allow every namespace";
        }
    }

    /// <summary>
    /// Keys of each persona, each identity's grant and the anonymous grant that no setting binds:
    /// a persona's misspelt <c>namespaces</c> would otherwise grant it every namespace. The rest of
    /// <c>tools:kv_store</c> is shared with ATLAS's configuration, whose other keys are left alone.
    /// </summary>
    public static IEnumerable<string> UnknownPolicyKeys(IConfiguration configuration)
    {
        var kvStore = configuration.GetSection(KvStoreOptions.Section);
        var personas = kvStore.GetSection("personas").GetChildren()
            .SelectMany(persona => OptionsValidation.UnknownKeys(persona, typeof(PersonaOptions)));
        var grants = kvStore.GetSection("identities").GetChildren().Append(kvStore.GetSection("anonymous"))
            .SelectMany(grant => OptionsValidation.UnknownKeys(grant, typeof(IdentityOptions)));
        return personas.Concat(grants);
    }

    /// <summary>
    /// Keys directly under <c>tools:kv_store</c> that no setting reads (<c>request_timeout_second</c>, say):
    /// warned about at start-up, not refused, since ATLAS's own configuration may keep keys of its own there.
    /// Asked after the options are validated, when <see cref="UnknownPolicyKeys"/> has refused any unknown
    /// key of the anonymous grant, the one nested section this lookup also walks.
    /// </summary>
    public static IEnumerable<string> UnknownBlockKeys(IConfiguration configuration) =>
        OptionsValidation.UnknownKeys(configuration.GetSection(KvStoreOptions.Section), typeof(KvStoreOptions), "limits", "adapters");
}
