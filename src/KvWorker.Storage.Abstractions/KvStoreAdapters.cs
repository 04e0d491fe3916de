using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;

namespace KvWorker.Storage;

/// <summary>A named adapter factory: the <c>register_kv_store_adapter</c> seam.</summary>
public sealed record KvStoreAdapterRegistration(string Name, Func<IServiceProvider, IKvStoreAdapter> Factory);

/// <summary>
/// The registered providers by name. Creates each adapter once, on first use,
/// and owns it: disposable adapters are disposed with the registry.
/// </summary>
public sealed class KvStoreAdapterRegistry(IServiceProvider services, IEnumerable<KvStoreAdapterRegistration> registrations)
    : IAsyncDisposable, IDisposable
{
    private readonly Dictionary<string, KvStoreAdapterRegistration> _registrations =
        registrations.ToDictionary(r => r.Name, StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, IKvStoreAdapter> _adapters = new(StringComparer.Ordinal);
    // A factory may open connections, and wait for a server that is down: it runs once per name
    // even when first requests race, and only the callers of that name wait.
    private readonly Dictionary<string, Lock> _creating =
        registrations.ToDictionary(r => r.Name, _ => new Lock(), StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _registrations.Keys;

    public bool Contains(string name) => _registrations.ContainsKey(name);

    /// <summary>The adapter registered as <paramref name="name"/>; the caller has checked <see cref="Contains"/>.</summary>
    public IKvStoreAdapter Get(string name)
    {
        if (_adapters.TryGetValue(name, out var adapter)) return adapter;
        var registration = _registrations[name];
        lock (_creating[name])
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
        services.AddKvStoreBasics();
        return services;
    }

    /// <summary>What every adapter relies on: the registry and the validated <c>tools:kv_store:limits</c>. Safe to call more than once.</summary>
    public static IServiceCollection AddKvStoreBasics(this IServiceCollection services)
    {
        if (services.Any(s => s.ServiceType == typeof(KvStoreAdapterRegistry))) return services;
        services.AddSingleton<KvStoreAdapterRegistry>();
        services.AddOptions<KvLimits>().BindConfiguration(KvLimits.Section)
            .ValidateEach(limits => limits.Validate().Select(failure => $"{KvLimits.Section}:{failure}"))
            .RefuseUnknownKeys(KvLimits.Section);
        return services;
    }
}
