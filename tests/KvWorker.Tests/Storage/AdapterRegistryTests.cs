using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>The provider registry: each adapter created once, on first use.</summary>
public sealed class AdapterRegistryTests
{
    /// <summary>An adapter that is never used: creating it opens no connection.</summary>
    private static IKvStoreAdapter Unused() =>
        new PostgresKvStoreAdapter(NpgsqlDataSource.Create("Host=127.0.0.1;Port=1"), new PostgresAdapterOptions(), new KvLimits());

    [Fact]
    public async Task A_provider_being_created_slowly_holds_up_only_its_own_callers()
    {
        using var slowStarted = new ManualResetEventSlim();
        using var slowMayFinish = new ManualResetEventSlim();
        var slowCreations = 0;
        var registry = new KvStoreAdapterRegistry(new ServiceCollection().BuildServiceProvider(),
        [
            // As Redis's connect with the server down: seconds of waiting for the first caller.
            new KvStoreAdapterRegistration("slow", _ =>
            {
                Interlocked.Increment(ref slowCreations);
                slowStarted.Set();
                slowMayFinish.Wait(TimeSpan.FromSeconds(30));
                return Unused();
            }),
            new KvStoreAdapterRegistration("fast", _ => Unused()),
        ]);

        var slowCallers = Enumerable.Range(0, 2).Select(_ => Task.Run(() => registry.Get("slow"))).ToList();
        Assert.True(slowStarted.Wait(TimeSpan.FromSeconds(10)));

        var fast = Task.Run(() => registry.Get("fast"));
        var finishedFirst = await Task.WhenAny(fast, Task.Delay(TimeSpan.FromSeconds(10)));
        slowMayFinish.Set();

        Assert.Same(fast, finishedFirst);
        var slow = await Task.WhenAll(slowCallers);
        Assert.Same(slow[0], slow[1]);
        Assert.Equal(1, slowCreations);
        Assert.Same(await fast, registry.Get("fast"));
    }
}
