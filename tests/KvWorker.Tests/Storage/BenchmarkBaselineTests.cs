using KvWorker.Bench;

namespace KvWorker.Tests.Storage;

/// <summary>
/// The benchmark's direct PostgreSQL baseline applies operations through the adapter, one
/// commit each, so that its figures compare like with like.
/// </summary>
[Collection(DatabaseCollection.Name)]
public sealed class BenchmarkBaselineTests(DatabaseFixture db)
{
    [Fact]
    public async Task Direct_postgres_baseline_applies_each_operation_as_the_adapter_reads_it()
    {
        var baseline = new DirectPostgres(db.DataSource, namespaceQuotaBytes: 1 << 20);
        var adapter = db.Adapter();
        var ns = "bench-" + Guid.NewGuid().ToString("N");

        Assert.Null(await baseline.CallAsync(new Request(KvOperations.Set, ns, "k0"), CancellationToken.None));
        var stored = await adapter.GetAsync(ns, "k0", CancellationToken.None);
        Assert.True(stored.Found);
        Assert.Equal(Workload.SetValue, stored.Value!.Value.GetRawText());
        Assert.Null(await baseline.CallAsync(new Request(KvOperations.Get, ns, "k0"), CancellationToken.None));

        Assert.Null(await baseline.CallAsync(new Request(KvOperations.Increment, ns, "c0"), CancellationToken.None));
        Assert.Null(await baseline.CallAsync(new Request(KvOperations.Increment, ns, "c0"), CancellationToken.None));
        Assert.Equal(2, (await adapter.GetAsync(ns, "c0", CancellationToken.None)).Value!.Value.GetInt64());

        Assert.Null(await baseline.CallAsync(new Request(KvOperations.Delete, ns, "k0"), CancellationToken.None));
        Assert.False((await adapter.GetAsync(ns, "k0", CancellationToken.None)).Found);

        var (counted, live, entries) = await db.UsageAsync(ns);
        Assert.Equal(live, counted);
        Assert.Equal(1, entries);
    }

    [Fact]
    public async Task Direct_postgres_baseline_reports_a_rejected_write_as_an_error()
    {
        var baseline = new DirectPostgres(db.DataSource, namespaceQuotaBytes: 10); // smaller than the benchmark's value
        var error = await baseline.CallAsync(new Request(KvOperations.Set, "bench-" + Guid.NewGuid().ToString("N"), "k0"), CancellationToken.None);
        Assert.Contains(KvErrorCodes.NamespaceQuotaExceededError, error);
    }
}
