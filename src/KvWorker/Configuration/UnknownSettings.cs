using System.Reflection;
using KvWorker.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace KvWorker.Configuration;

/// <summary>
/// Keys the worker does not read, written in the sections that are its own (RabbitMq, Worker,
/// Health and the persona policy). .NET's binder skips them without a word, so a misspelt key
/// would leave its setting at the default: a persona's misspelt <c>namespaces</c> would grant
/// it every namespace. The rest of <c>tools:kv_store</c> is shared with ATLAS's configuration,
/// whose other keys the worker leaves alone.
/// </summary>
public static class UnknownSettings
{
    /// <summary>Refuses at start-up any key of <paramref name="section"/> that no property of <typeparamref name="T"/> binds.</summary>
    public static OptionsBuilder<T> RefuseUnknownKeys<T>(this OptionsBuilder<T> builder, string section) where T : class =>
        builder.ValidateEach<T, IConfiguration>((_, configuration) => In(configuration.GetSection(section), typeof(T)));

    /// <summary>The keys of each persona, each identity's grant and the anonymous grant that no setting binds.</summary>
    public static IEnumerable<string> InPolicy(IConfiguration configuration)
    {
        var kvStore = configuration.GetSection(KvStoreOptions.Section);
        var personas = kvStore.GetSection("personas").GetChildren().SelectMany(persona => In(persona, typeof(PersonaOptions)));
        var grants = kvStore.GetSection("identities").GetChildren().Append(kvStore.GetSection("anonymous"))
            .SelectMany(grant => In(grant, typeof(IdentityOptions)));
        return personas.Concat(grants);
    }

    /// <summary>A failure, starting with the full key, for each key of <paramref name="section"/> that no property of <paramref name="options"/> binds.</summary>
    private static IEnumerable<string> In(IConfigurationSection section, Type options)
    {
        var names = options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(property => property.SetMethod is { IsPublic: true })
            .Select(property => property.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name ?? property.Name)
            .ToList();
        return section.GetChildren()
            .Where(child => !names.Contains(child.Key, StringComparer.OrdinalIgnoreCase))
            .Select(child => $"{child.Path} is not a setting the worker reads ({section.Path} takes {string.Join(", ", names)})");
    }
}
