using KvWorker.Contracts;
using KvWorker.Storage;

namespace KvWorker.Adapters.Conformance;

/// <summary>
/// The events a store's changes report, the same whichever adapter holds a namespace: expiries
/// (purged or reclaimed) with exact counts and bytes, and quota thresholds, each once however
/// many adapters work on the store. Part of <see cref="KvStoreAdapterConformanceTests"/>.
/// </summary>
public abstract partial class KvStoreAdapterConformanceTests
{
    private static readonly PurgeExpiredEntries PurgeAll = new();

    private async Task<List<KvEntriesExpired>> ExpiriesReportedAsync(string ns)
    {
        await PublishWaitingEventsAsync();
        return [.. Events.All<KvEntriesExpired>().Where(e => e.Namespace == ns)];
    }

    private async Task<List<NamespaceQuotaThresholdReached>> ThresholdsReportedAsync(string ns)
    {
        await PublishWaitingEventsAsync();
        return [.. Events.All<NamespaceQuotaThresholdReached>().Where(e => e.Namespace == ns)];
    }

    // ---- Expiry ----

    [Fact]
    public async Task A_purge_removes_expired_entries_and_reports_their_exact_count_and_bytes_once()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        for (var i = 0; i < 12; i++) await adapter.SetAsync(ns, $"k{i}", ValueOfSize(10 + i), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "live", ValueOfSize(7), 60, null, None);
        await Task.Delay(PastShortTtl);

        var purge = await adapter.PurgeExpiredAsync(PurgeAll, None);
        var again = await adapter.PurgeExpiredAsync(PurgeAll, None);

        Assert.True(purge.Ran);
        var purged = Assert.Single(purge.Namespaces, p => p.Namespace == ns);
        Assert.Equal((12L, 186L), (purged.Count, purged.BytesFreed)); // 10 + 11 + ... + 21 bytes
        Assert.DoesNotContain(again.Namespaces, p => p.Namespace == ns);
        var events = await ExpiriesReportedAsync(ns);
        Assert.Equal((12L, 186L), (events.Sum(e => e.Count), events.Sum(e => e.BytesFreed)));
        Assert.Equal((7L, 1L), await UsageAsync(adapter, ns));
        Assert.True((await adapter.GetAsync(ns, "live", None)).Found);
    }

    [Fact]
    public async Task A_purge_of_one_namespace_leaves_the_others_alone()
    {
        var adapter = await AdapterAsync();
        var (ns, other) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(ns, "k", ValueOfSize(10), ShortTtlSeconds, null, None);
        await adapter.SetAsync(other, "k", ValueOfSize(10), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var purge = await adapter.PurgeExpiredAsync(new PurgeExpiredEntries { Namespace = ns }, None);

        Assert.Equal((ns, 1L, 10L), (purge.Namespace, purge.Entries, purge.BytesFreed));
        Assert.Equal((0L, 0L), await UsageAsync(adapter, ns));
        Assert.Equal((10L, 1L), await UsageAsync(adapter, other));
        Assert.Empty(await ExpiriesReportedAsync(other));
    }

    [Fact]
    public async Task A_purge_stops_at_its_time_budget_with_what_it_removed_and_the_next_run_removes_the_rest()
    {
        const int count = 2000;
        var adapter = await CreateAdapterAsync(new AdapterSettings { PurgeBatchSize = 1 });
        var ns = NewNamespace();
        // A few writes at a time: 2,000 sent at once would queue on one Redis connection, where the
        // last waits for all the others' scripts and a busy machine can take it past its 5 s time-out.
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (i, _) => await adapter.SetAsync(ns, $"k{i}", ValueOfSize(10), ShortTtlSeconds, null, None));
        await Task.Delay(PastShortTtl);

        // The budget runs out once the run has removed some entries; an entry per batch takes it long enough.
        using var budget = new CancellationTokenSource();
        var purge = adapter.PurgeExpiredAsync(new PurgeExpiredEntries { Namespace = ns }, budget.Token);
        while (!purge.IsCompleted && (await UsageAsync(adapter, ns)).Entries == count) await Task.Delay(1);
        budget.Cancel();
        var first = await purge;
        var rest = await adapter.PurgeExpiredAsync(new PurgeExpiredEntries { Namespace = ns }, None);

        Assert.Equal((true, false), (first.Ran, first.Complete));
        Assert.InRange(first.Entries, 1, count - 1);
        Assert.Equal(first.Entries * 10, first.BytesFreed);
        Assert.True(rest.Complete);
        Assert.Equal(count, first.Entries + rest.Entries);
        Assert.Equal((0L, 0L), await UsageAsync(adapter, ns));
        var events = await ExpiriesReportedAsync(ns);
        Assert.Equal((count, count * 10L), (events.Sum(e => e.Count), events.Sum(e => e.BytesFreed)));
    }

    [Fact]
    public async Task Two_adapters_purging_at_once_report_each_expired_entry_once()
    {
        var replicas = await ReplicasAsync(2);
        var ns = NewNamespace();
        for (var i = 0; i < 40; i++) await replicas[i % 2].SetAsync(ns, $"k{i}", ValueOfSize(10), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        await Task.WhenAll(replicas.Select(replica => Task.Run(() => replica.PurgeExpiredAsync(PurgeAll, None))));
        await replicas[0].PurgeExpiredAsync(PurgeAll, None); // whatever a purge that did not run left

        var events = await ExpiriesReportedAsync(ns);
        Assert.Equal((40L, 400L), (events.Sum(e => e.Count), events.Sum(e => e.BytesFreed)));
        Assert.Equal((0L, 0L), await UsageAsync(replicas[0], ns));
    }

    [Fact]
    public async Task Expired_entries_reclaimed_by_a_write_that_needs_their_room_are_reported()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "old", ValueOfSize(50), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "older", ValueOfSize(32), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        await adapter.SetAsync(ns, "new", ValueOfSize(82), null, null, None);

        var events = await ExpiriesReportedAsync(ns);
        Assert.Equal((2L, 82L), (events.Sum(e => e.Count), events.Sum(e => e.BytesFreed)));
    }

    [Fact]
    public async Task An_expired_entry_overwritten_by_a_write_the_global_quota_makes_room_for_is_not_reported()
    {
        // An adapter may remove the other expired entry for the write or leave it to the purge; either
        // way, what is reported expired once the purge has run is that entry alone, never the one the
        // write replaced.
        var adapter = await AdapterAsync(namespaceQuotaBytes: 1000, globalQuotaBytes: 20, isolated: true);
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", ValueOfSize(5), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "other", ValueOfSize(6), ShortTtlSeconds, null, None);
        await adapter.SetAsync(ns, "live", ValueOfSize(8), null, null, None);
        await Task.Delay(PastShortTtl);

        await adapter.SetAsync(ns, "k", ValueOfSize(12), null, null, None);
        await adapter.PurgeExpiredAsync(new PurgeExpiredEntries { Namespace = ns }, None);

        var events = await ExpiriesReportedAsync(ns);
        Assert.Equal((1L, 6L), (events.Sum(e => e.Count), events.Sum(e => e.BytesFreed)));
        Assert.Equal((20L, 2L), await UsageAsync(adapter, ns));
    }

    // ---- Quota thresholds ----

    [Fact]
    public async Task A_threshold_is_reported_once_per_crossing_from_below_and_again_after_usage_falls_back()
    {
        var adapter = await AdapterAsync(namespaceQuotaBytes: 100); // thresholds 0.8 and 1.0
        var ns = NewNamespace();

        await adapter.SetAsync(ns, "a", ValueOfSize(50), null, null, None); // 50
        await adapter.SetAsync(ns, "b", ValueOfSize(30), null, null, None); // 80: reaches 0.8
        await adapter.SetAsync(ns, "c", ValueOfSize(20), null, null, None); // 100: reaches 1.0
        await adapter.SetAsync(ns, "c", ValueOfSize(20), null, null, None); // 100 again: no crossing
        await adapter.DeleteAsync(ns, "c", null, None);                     // 80: 1.0 re-armed
        await adapter.SetAsync(ns, "c", ValueOfSize(20), null, null, None); // 100: reaches 1.0 again
        await adapter.DeleteAsync(ns, "b", null, None);                     // 70: 0.8 re-armed
        await adapter.SetAsync(ns, "b", ValueOfSize(10), null, null, None); // 80: reaches 0.8 again

        var events = await ThresholdsReportedAsync(ns);
        Assert.Equal([0.8, 1.0, 1.0, 0.8], events.Select(e => e.Threshold));
        Assert.Equal([80L, 100, 100, 80], events.Select(e => e.UsedBytes));
        Assert.All(events, e => Assert.Equal(100, e.QuotaBytes));
    }

    [Fact]
    public async Task Concurrent_writers_on_two_adapters_filling_a_namespace_report_each_threshold_once()
    {
        var replicas = await ReplicasAsync(2, namespaceQuotaBytes: 1000);
        var ns = NewNamespace();

        // 160 writes of 10 bytes race for room for 100.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                try
                {
                    await replicas[writer % 2].SetAsync(ns, $"w{writer}-{i}", ValueOfSize(10), null, null, None);
                }
                catch (QuotaExceededException)
                {
                }
            }
        })));

        Assert.Equal((1000L, 100L), await UsageAsync(replicas[0], ns));
        Assert.Equal([0.8, 1.0], (await ThresholdsReportedAsync(ns)).Select(e => e.Threshold));
    }
}
