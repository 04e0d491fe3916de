using System.Text;
using KvWorker.Contracts;
using KvWorker.Storage;

namespace KvWorker.Adapters.Conformance;

/// <summary>
/// Versions, compare-and-set, listing, TTL refresh and bulk reads: the part of the
/// conformance suite that etcd, NATS KV and Consul users expect. Part of
/// <see cref="KvStoreAdapterConformanceTests"/>, so every adapter runs it.
/// </summary>
public abstract partial class KvStoreAdapterConformanceTests
{
    private static async Task<long> VersionAsync(IKvStoreAdapter adapter, string ns, string key) =>
        (await adapter.GetAsync(ns, key, None)).Version ?? throw new Xunit.Sdk.XunitException($"{key} has no version");

    // ---- Versions ----

    [Fact]
    public async Task Every_write_of_a_key_gives_it_a_new_higher_version_that_get_returns()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();

        var set = await adapter.SetAsync(ns, "k", Value("1"), null, null, None);
        var read = await adapter.GetAsync(ns, "k", None);
        var incremented = await adapter.IncrementAsync(ns, "k", 1, 0, null, null, None);
        var touched = await adapter.TouchAsync(ns, "k", 60, null, None);
        var setAgain = await adapter.SetAsync(ns, "k", Value("1"), null, null, None);

        Assert.True(set.Version > 0);
        Assert.Equal(set.Version, read.Version);
        Assert.True(incremented.Version > set.Version);
        Assert.True(touched.Version > incremented.Version);
        Assert.True(setAgain.Version > touched.Version);
        Assert.Equal(setAgain.Version, await VersionAsync(adapter, ns, "k"));
        Assert.Null((await adapter.GetAsync(ns, "missing", None)).Version);
    }

    [Fact]
    public async Task A_version_is_never_reused_for_a_key_after_a_delete_or_an_expiry()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var first = await adapter.SetAsync(ns, "k", Value("1"), null, null, None);
        await adapter.DeleteAsync(ns, "k", null, None);
        var recreated = await adapter.SetAsync(ns, "k", Value("1"), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var afterExpiry = await adapter.IncrementAsync(ns, "k", 1, 0, null, null, None);

        Assert.True(recreated.Version > first.Version);
        Assert.True(afterExpiry.Version > recreated.Version);
    }

    [Fact]
    public async Task Versions_of_one_namespace_are_kept_apart_from_another_and_replicas_agree()
    {
        var replicas = await ReplicasAsync(2);
        var (ns, other) = (NewNamespace(), NewNamespace());

        // Each write of the namespace races a write of another one, on the other replica.
        var versions = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(async () =>
        {
            var elsewhere = replicas[(i + 1) % 2].IncrementAsync(other, "c", 1, 0, null, null, None);
            var version = (await replicas[i % 2].IncrementAsync(ns, "c", 1, 0, null, null, None)).Version;
            await elsewhere;
            return version;
        })));

        // A counter of its own: the namespace's 40 writes took versions 1 to 40, whatever the other took.
        Assert.Equal(Enumerable.Range(1, 40).Select(v => (long)v), versions.Order());
        Assert.Equal(40, await VersionAsync(replicas[0], ns, "c"));
    }

    // ---- Compare-and-set ----

    [Fact]
    public async Task A_set_with_the_live_version_applies_and_a_stale_one_conflicts_naming_the_current_version()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var v1 = (await adapter.SetAsync(ns, "k", Value("\"one\""), null, null, None)).Version;

        var v2 = (await adapter.SetAsync(ns, "k", Value("\"two\""), null, null, None, ifVersion: v1)).Version;
        var conflict = await Assert.ThrowsAsync<VersionConflictException>(
            () => adapter.SetAsync(ns, "k", Value("\"three\""), null, null, None, ifVersion: v1));

        Assert.True(v2 > v1);
        Assert.Equal(KvErrorCodes.VersionConflictError, conflict.Code);
        Assert.Equal(v2, conflict.CurrentVersion);
        Assert.Equal(v2, conflict.ToReply().Error.CurrentVersion);
        Assert.Equal("\"two\"", await RawAsync(adapter, ns, "k"));
        Assert.Equal(v2, await VersionAsync(adapter, ns, "k"));
    }

    [Fact]
    public async Task If_version_zero_creates_an_absent_or_expired_key_and_conflicts_on_a_live_one()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "expired", Value("1"), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var created = await adapter.SetAsync(ns, "absent", Value("1"), null, null, None, ifVersion: 0);
        var recreated = await adapter.SetAsync(ns, "expired", Value("2"), null, null, None, ifVersion: 0);
        var conflict = await Assert.ThrowsAsync<VersionConflictException>(
            () => adapter.SetAsync(ns, "absent", Value("3"), null, null, None, ifVersion: 0));

        Assert.True(created.Version > 0);
        Assert.Equal("2", await RawAsync(adapter, ns, "expired"));
        Assert.Equal(created.Version, conflict.CurrentVersion);
        Assert.Equal("1", await RawAsync(adapter, ns, "absent"));
        Assert.True(recreated.Version > 0);
    }

    [Fact]
    public async Task A_conditional_set_of_an_absent_key_conflicts_without_a_current_version()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();

        var conflict = await Assert.ThrowsAsync<VersionConflictException>(
            () => adapter.SetAsync(ns, "never", Value("1"), null, null, None, ifVersion: 7));

        Assert.Null(conflict.CurrentVersion);
        Assert.Null(conflict.ToReply().Error.CurrentVersion);
        Assert.False((await adapter.GetAsync(ns, "never", None)).Found);
        Assert.Equal((0L, 0L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task A_conditional_delete_removes_only_the_version_it_names()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var v1 = (await adapter.SetAsync(ns, "k", Value("1"), null, null, None)).Version;
        var v2 = (await adapter.SetAsync(ns, "k", Value("2"), null, null, None)).Version;

        var stale = await Assert.ThrowsAsync<VersionConflictException>(() => adapter.DeleteAsync(ns, "k", null, None, ifVersion: v1));
        var present = await Assert.ThrowsAsync<VersionConflictException>(() => adapter.DeleteAsync(ns, "k", null, None, ifVersion: 0));
        Assert.Equal("2", await RawAsync(adapter, ns, "k"));
        var deleted = await adapter.DeleteAsync(ns, "k", null, None, ifVersion: v2);

        Assert.Equal(v2, stale.CurrentVersion);
        Assert.Equal(v2, present.CurrentVersion);
        Assert.True(deleted.Deleted);
        Assert.False((await adapter.GetAsync(ns, "k", None)).Found);
        Assert.Equal((0L, 0L), await UsageAsync(adapter, ns));
        // Nothing there: if_version 0 holds, so the delete applies and deletes nothing.
        Assert.False((await adapter.DeleteAsync(ns, "k", null, None, ifVersion: 0)).Deleted);
    }

    [Fact]
    public async Task A_replayed_conditional_set_gets_its_first_answer_not_a_conflict()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var v1 = (await adapter.SetAsync(ns, "k", Value("1"), null, null, None)).Version;
        var requestId = NewRequestId();

        var first = await adapter.SetAsync(ns, "k", Value("2"), null, requestId, None, ifVersion: v1);
        var replay = await adapter.SetAsync(ns, "k", Value("2"), null, requestId, None, ifVersion: v1);

        Assert.Equal(first.Version, replay.Version);
        Assert.Equal(first.Version, await VersionAsync(adapter, ns, "k"));
    }

    [Fact]
    public async Task Sixteen_concurrent_compare_and_set_incrementers_retrying_on_conflict_end_with_an_exact_count()
    {
        var replicas = await ReplicasAsync(2);
        var ns = NewNamespace();
        await replicas[0].SetAsync(ns, "count", Value("0"), null, null, None);
        const int Workers = 16, Each = 10;
        var conflicts = 0;

        await Task.WhenAll(Enumerable.Range(0, Workers).Select(worker => Task.Run(async () =>
        {
            var adapter = replicas[worker % 2];
            for (var done = 0; done < Each;)
            {
                var read = await adapter.GetAsync(ns, "count", None);
                var next = Value((read.Value!.Value.GetInt64() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
                try
                {
                    await adapter.SetAsync(ns, "count", next, null, NewRequestId(), None, ifVersion: read.Version);
                    done++;
                }
                catch (VersionConflictException)
                {
                    Interlocked.Increment(ref conflicts);
                }
            }
        })));

        Assert.Equal((Workers * Each).ToString(System.Globalization.CultureInfo.InvariantCulture), await RawAsync(replicas[0], ns, "count"));
    }

    // ---- Touch ----

    [Fact]
    public async Task Touch_sets_a_new_ttl_on_a_live_entry_keeping_its_value_and_size()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var set = await adapter.SetAsync(ns, "k", Value("{\"a\":1}"), 5, null, None);

        var longer = await adapter.TouchAsync(ns, "k", 600, null, None);
        var read = await adapter.GetAsync(ns, "k", None);
        var persistent = await adapter.TouchAsync(ns, "k", null, null, None);

        Assert.True(longer.Found);
        Assert.InRange(longer.TtlSeconds!.Value, 595, 600);
        Assert.InRange(read.TtlSeconds!.Value, 595, 600);
        Assert.Equal("{\"a\":1}", read.Value!.Value.GetRawText());
        Assert.True(longer.Version > set.Version);
        Assert.True(persistent.Found);
        Assert.Null(persistent.TtlSeconds);
        Assert.True(persistent.Version > longer.Version);
        Assert.Null((await adapter.GetAsync(ns, "k", None)).TtlSeconds);
        Assert.Equal((7L, 1L), await UsageAsync(adapter, ns));
    }

    [Fact]
    public async Task Touch_of_a_missing_or_expired_key_finds_nothing_and_changes_nothing()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "expired", Value("1"), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var missing = await adapter.TouchAsync(ns, "missing", 60, null, None);
        var expired = await adapter.TouchAsync(ns, "expired", 60, null, None);

        Assert.False(missing.Found);
        Assert.Null(missing.Version);
        Assert.Null(missing.TtlSeconds);
        Assert.False(expired.Found);
        Assert.False((await adapter.GetAsync(ns, "expired", None)).Found);
        Assert.False((await adapter.GetAsync(ns, "missing", None)).Found);
    }

    [Fact]
    public async Task A_replayed_touch_answers_as_the_first_time()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Value("1"), null, null, None);
        var requestId = NewRequestId();

        var first = await adapter.TouchAsync(ns, "k", 60, requestId, None);
        var replay = await adapter.TouchAsync(ns, "k", 60, requestId, None);

        Assert.Equal(first.Version, replay.Version);
        Assert.Equal(first.Version, await VersionAsync(adapter, ns, "k"));
    }

    // ---- Get many ----

    [Fact]
    public async Task Get_many_answers_each_key_in_request_order_with_duplicates_and_missing_keys()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        var a = await adapter.SetAsync(ns, "a", Value("\"A\""), null, null, None);
        await adapter.SetAsync(ns, "b", Value("[1]"), 60, null, None);
        await adapter.SetAsync(ns, "gone", Value("0"), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var many = await adapter.GetManyAsync(ns, ["b", "missing", "a", "b", "gone"], None);

        Assert.Equal(ns, many.Namespace);
        Assert.Equal(["b", "missing", "a", "b", "gone"], many.Entries.Select(e => e.Key));
        Assert.Equal([true, false, true, true, false], many.Entries.Select(e => e.Found));
        Assert.Equal("[1]", many.Entries[0].Value!.Value.GetRawText());
        Assert.InRange(many.Entries[0].TtlSeconds!.Value, 55, 60);
        Assert.Equal(a.Version, many.Entries[2].Version);
        Assert.All(many.Entries, e => Assert.Equal(ns, e.Namespace));
        Assert.Null(many.Entries[1].Value);
    }

    // ---- List ----

    private static async Task<List<KvListedKey>> ListAllAsync(IKvStoreAdapter adapter, string ns, string? prefix, int limit)
    {
        var keys = new List<KvListedKey>();
        string? cursor = null;
        do
        {
            var page = await adapter.ListAsync(ns, prefix, limit, cursor, None);
            Assert.True(page.Keys.Count <= limit);
            keys.AddRange(page.Keys);
            cursor = page.NextCursor;
        } while (cursor is not null);
        return keys;
    }

    [Fact]
    public async Task List_pages_through_live_keys_in_byte_order_with_sizes_versions_and_ttls()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        // Byte order of UTF-8: upper case before lower case, and 'é' (C3 A9) after 'z'.
        string[] keys = ["b", "a", "B", "é", "z", "a1", "a0"];
        foreach (var key in keys) await adapter.SetAsync(ns, key, Value("\"" + key + "\""), key == "z" ? 60 : null, null, None);
        await adapter.SetAsync(ns, "expired", Value("1"), ShortTtlSeconds, null, None);
        await Task.Delay(PastShortTtl);

        var all = await ListAllAsync(adapter, ns, null, 2);
        var first = await adapter.ListAsync(ns, null, 100, null, None);

        Assert.Equal(["B", "a", "a0", "a1", "b", "z", "é"], all.Select(k => k.Key));
        Assert.Null(first.NextCursor);
        Assert.Equal(all.Select(k => k.Key), first.Keys.Select(k => k.Key));
        var z = all.Single(k => k.Key == "z");
        Assert.InRange(z.TtlSeconds!.Value, 55, 60);
        Assert.Null(all.Single(k => k.Key == "a").TtlSeconds);
        Assert.Equal(Encoding.UTF8.GetByteCount("\"é\""), all.Single(k => k.Key == "é").SizeBytes);
        Assert.Equal(await VersionAsync(adapter, ns, "a1"), all.Single(k => k.Key == "a1").Version);
    }

    [Fact]
    public async Task List_with_a_prefix_returns_only_the_keys_that_start_with_it()
    {
        var adapter = await AdapterAsync();
        var ns = NewNamespace();
        foreach (var key in new[] { "task:1", "task:2", "task:10", "tasks", "tas", "plan:1", "task" })
            await adapter.SetAsync(ns, key, Value("1"), null, null, None);
        await adapter.SetAsync(ns, "é:1", Value("1"), null, null, None);
        await adapter.SetAsync(ns, "é", Value("1"), null, null, None);
        await adapter.SetAsync(ns, "f", Value("1"), null, null, None);

        Assert.Equal(["task:1", "task:10", "task:2"], (await ListAllAsync(adapter, ns, "task:", 2)).Select(k => k.Key));
        Assert.Equal(["task", "task:1", "task:10", "task:2", "tasks"], (await ListAllAsync(adapter, ns, "task", 100)).Select(k => k.Key));
        Assert.Equal(["é", "é:1"], (await ListAllAsync(adapter, ns, "é", 1)).Select(k => k.Key));
        Assert.Empty((await adapter.ListAsync(ns, "nothing", 10, null, None)).Keys);
    }

    [Fact]
    public async Task A_full_list_pass_under_concurrent_inserts_and_deletes_returns_no_key_twice_and_every_key_that_stayed()
    {
        var replicas = await ReplicasAsync(2);
        var ns = NewNamespace();
        var stable = Enumerable.Range(0, 150).Select(i => $"s{i:D4}").ToList();
        var churn = Enumerable.Range(0, 150).Select(i => $"c{i:D4}").ToList();
        foreach (var key in stable.Concat(churn)) await replicas[0].SetAsync(ns, key, Value("1"), null, null, None);
        using var stop = new CancellationTokenSource();

        var writer = Task.Run(async () =>
        {
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                var key = churn[i++ % churn.Count];
                await replicas[1].DeleteAsync(ns, key, null, None);
                await replicas[1].SetAsync(ns, "n" + i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture), Value("1"), null, null, None);
                await replicas[1].SetAsync(ns, key, Value("2"), null, null, None);
            }
        });
        var listed = await ListAllAsync(replicas[0], ns, null, 7);
        stop.Cancel();
        await writer;

        var keys = listed.Select(k => k.Key).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.Empty(stable.Except(keys));
        Assert.Equal(keys.Order(StringComparer.Ordinal), keys);
    }
}
