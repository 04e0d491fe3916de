using System.Collections.Concurrent;
using KvWorker.Configuration;
using Microsoft.Extensions.Options;

namespace KvWorker.Storage;

/// <summary>A named adapter factory: the <c>register_kv_store_adapter</c> seam.</summary>
public sealed record KvStoreAdapterRegistration(string Name, Func<IServiceProvider, IKvStoreAdapter> Factory);

/// <summary>
/// Picks the adapter for a request: the request's provider, else its persona's, else <c>default_adapter</c>.
/// Owns the adapters its factories create, and disposes those that are disposable.
/// </summary>
public sealed class KvStoreAdapterRegistry(
    IServiceProvider services, IEnumerable<KvStoreAdapterRegistration> registrations, IOptions<KvStoreOptions> options)
    : IAsyncDisposable, IDisposable
{
    private readonly Dictionary<string, KvStoreAdapterRegistration> _registrations =
        registrations.ToDictionary(r => r.Name, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IKvStoreAdapter> _adapters = new(StringComparer.Ordinal);
    // A factory may open connections: it runs once per name even when first requests race.
    private readonly Lock _creating = new();

    public IReadOnlyCollection<string> Names => _registrations.Keys;

    public IKvStoreAdapter Resolve(string? requestedProvider, string? persona)
    {
        var kvStore = options.Value;
        PersonaOptions? personaOptions = null;
        if (persona is not null) kvStore.Personas.TryGetValue(persona, out personaOptions);
        var name = requestedProvider ?? personaOptions?.Provider ?? kvStore.DefaultAdapter;
        if (!_registrations.TryGetValue(name, out var registration))
        {
            var source = requestedProvider is not null ? "request"
                : personaOptions?.Provider is not null ? $"persona '{persona}'"
                : $"{KvStoreOptions.Section}:default_adapter";
            throw KvStoreException.InvalidRequest(
                $"unknown provider '{name}' named by {source}; registered providers: {string.Join(", ", Names.Order())}");
        }
        if (_adapters.TryGetValue(name, out var adapter)) return adapter;
        lock (_creating)
            return _adapters.GetOrAdd(name, _ => registration.Factory(services));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var adapter in _adapters.Values)
        {
            if (adapter is IAsyncDisposable asyncDisposable) await asyncDisposable.DisposeAsync();
            else if (adapter is IDisposable disposable) disposable.Dispose();
        }
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}

public static class KvStoreAdapterServiceCollectionExtensions
{
    /// <summary>Registers a provider that requests and personas can name; the factory runs once, on first use.</summary>
    public static IServiceCollection AddKvStoreAdapter(
        this IServiceCollection services, string name, Func<IServiceProvider, IKvStoreAdapter> factory)
    {
        services.AddSingleton(new KvStoreAdapterRegistration(name, factory));
        return services;
    }
}
