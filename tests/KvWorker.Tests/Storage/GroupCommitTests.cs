using KvWorker.Configuration;
using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>Commands sharing one transaction, each with its own result.</summary>
[Collection(DatabaseCollection.Name)]
public sealed class GroupCommitTests(DatabaseFixture db)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");
    private static StoredValue Value(string json) => StoredValue.From(JsonDocument.Parse(json).RootElement.Clone(), maxDepth: 32);

    [Fact]
    public async Task Commands_grouped_in_one_transaction_each_get_their_own_result_and_rejections_do_not_spread()
    {
        var adapter = new PostgresKvStoreAdapter(db.DataSource,
            new PostgresAdapterOptions { NamespaceQuotaBytes = 100, GroupCommit = new GroupCommitOptions { Transactions = 1, ReadTransactions = 0 } },
            new KvLimits());
        var (blocked, ok, full, text) = (NewNamespace(), NewNamespace(), NewNamespace(), NewNamespace());
        await adapter.SetAsync(full, "big", Value($"\"{new string('x', 90)}\""), null, null, None);
        await adapter.SetAsync(text, "t", Value("\"not a number\""), null, null, None);
        var groupsBefore = adapter.Groups;

        // The only transaction slot waits on a lock, so the next commands gather behind it.
        var holder = await db.LockNamespaceAsync(blocked);
        var first = adapter.SetAsync(blocked, "k", Value("1"), null, null, None);
        await db.WaitForALockWaiterAsync();
        var set = adapter.SetAsync(ok, "k", Value("{\"a\":1}"), null, null, None);
        var overQuota = adapter.SetAsync(full, "k", Value($"\"{new string('y', 20)}\""), null, null, None);
        var notInteger = adapter.IncrementAsync(text, "t", 1, 0, null, null, None);
        var increment = adapter.IncrementAsync(ok, "c", 5, 0, null, null, None);
        var read = adapter.GetAsync(ok, "k", None); // after the set of the same namespace: sees it
        await holder.CommitAsync();
        await holder.Connection!.DisposeAsync();

        await first;
        Assert.Equal(1, (await set).Value.GetProperty("a").GetInt32());
        Assert.Equal("NamespaceQuotaExceededError", (await Assert.ThrowsAsync<QuotaExceededException>(() => overQuota)).Code);
        Assert.Equal("InvalidValueTypeError", (await Assert.ThrowsAsync<KvStoreException>(() => notInteger)).Code);
        Assert.Equal(5, (await increment).Value.GetInt64());
        Assert.True((await read).Found);
        Assert.Equal(2, adapter.Groups - groupsBefore); // the blocked one, then all five together
        Assert.Equal(92, (await db.UsageAsync(full)).CountedBytes); // the rejected write changed nothing
    }

    [Fact]
    public async Task A_write_that_waited_for_its_namespace_lock_counts_its_ttl_from_when_it_got_the_lock()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();

        var holder = await db.LockNamespaceAsync(ns);
        var write = adapter.SetAsync(ns, "k", Value("1"), 2, null, None);
        await db.WaitForALockWaiterAsync();
        await Task.Delay(TimeSpan.FromSeconds(2.5)); // longer than the TTL
        await holder.CommitAsync();
        await holder.Connection!.DisposeAsync();
        await write;

        // Counted from the transaction's start, the entry would have been written already expired.
        var entry = await adapter.GetAsync(ns, "k", None);
        Assert.True(entry.Found);
        Assert.InRange(entry.TtlSeconds!.Value, 1, 2);
    }

    [Fact]
    public async Task A_get_is_answered_while_the_write_transaction_waits_on_a_lock()
    {
        var adapter = new PostgresKvStoreAdapter(db.DataSource, new PostgresAdapterOptions(), new KvLimits());
        var (blocked, ns) = (NewNamespace(), NewNamespace());
        await adapter.SetAsync(ns, "k", Value("1"), null, null, None);

        // The one write transaction (the default) waits on the lock; gets run in groups of their own.
        var holder = await db.LockNamespaceAsync(blocked);
        var write = adapter.SetAsync(blocked, "k", Value("2"), null, null, None);
        await db.WaitForALockWaiterAsync();
        var read = await adapter.GetAsync(ns, "k", None).WaitAsync(TimeSpan.FromSeconds(10));
        var writeWaited = !write.IsCompleted;
        await holder.CommitAsync();
        await holder.Connection!.DisposeAsync();

        Assert.Equal(1, read.Value!.Value.GetInt32());
        Assert.True(writeWaited);
        Assert.Equal(2, (await write).Value.GetInt32());
    }

    [Fact]
    public async Task A_command_that_fails_its_group_fails_alone_and_its_neighbours_succeed()
    {
        // A database of its own, where writing the key "boom" fails the transaction.
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        await using (var trigger = isolated.DataSource.CreateCommand("""
            CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.key = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER boom BEFORE INSERT ON kv_entries FOR EACH ROW EXECUTE FUNCTION boom();
            """))
            await trigger.ExecuteNonQueryAsync();
        var adapter = new PostgresKvStoreAdapter(isolated.DataSource,
            new PostgresAdapterOptions { GroupCommit = new GroupCommitOptions { Transactions = 1, ReadTransactions = 0 } }, new KvLimits());
        var (blocked, ns) = (NewNamespace(), NewNamespace());
        var groupsBefore = adapter.Groups;
        var holder = await isolated.LockNamespaceAsync(blocked);
        var first = adapter.SetAsync(blocked, "k", Value("1"), null, null, None);
        await isolated.WaitForALockWaiterAsync();

        var one = adapter.SetAsync(ns, "one", Value("1"), null, null, None);
        var broken = adapter.SetAsync(ns, "boom", Value("2"), null, null, None);
        var two = adapter.IncrementAsync(ns, "two", 2, 0, null, null, None);
        await holder.CommitAsync();
        await holder.Connection!.DisposeAsync();

        await first;
        Assert.True((await one).Version > 0);
        Assert.Equal(2, (await two).Value.GetInt64());
        var error = await Assert.ThrowsAsync<PostgresException>(() => broken);
        Assert.Equal("boom", error.MessageText);
        Assert.False((await adapter.GetAsync(ns, "boom", None)).Found);
        Assert.Equal((2L, 2L, 2L), await isolated.UsageAsync(ns));
        // The blocked group, the failed group of three, each of the three alone, and the get.
        Assert.Equal(6, adapter.Groups - groupsBefore);
        await isolated.DisposeAsync();
    }

    [Fact]
    public async Task Grouped_writes_to_many_namespaces_with_a_global_quota_do_not_deadlock_and_stay_exact()
    {
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        var adapters = Enumerable.Range(0, 3).Select(_ => isolated.Adapter(namespaceQuotaBytes: 10_000, globalQuotaBytes: 2_000)).ToList();
        var namespaces = Enumerable.Range(0, 6).Select(_ => NewNamespace()).ToList();
        var accepted = 0;

        // Three "replicas" write 10-byte values to six namespaces in different orders.
        await Task.WhenAll(adapters.SelectMany((adapter, a) => Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < 40; i++)
            {
                var ns = namespaces[(i + writer + a) % namespaces.Count];
                try
                {
                    await adapter.SetAsync(ns, $"a{a}-w{writer}-{i}", Value("\"12345678\""), null, null, None);
                    Interlocked.Increment(ref accepted);
                }
                catch (QuotaExceededException)
                {
                }
            }
        }))));

        Assert.Equal(200, accepted); // exactly 2000 bytes of the 9600 attempted
        long total = 0;
        foreach (var ns in namespaces) total += (await isolated.UsageAsync(ns)).LiveBytes;
        Assert.Equal(2000, total);
        await isolated.DisposeAsync();
    }

    /// <summary>A JSON string value of exactly <paramref name="bytes"/> bytes.</summary>
    private static StoredValue Bytes(int bytes) => Value($"\"{new string('x', bytes - 2)}\"");

    [Fact]
    public async Task A_write_is_admitted_when_expired_entries_in_its_namespace_and_elsewhere_together_make_room()
    {
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        var adapter = isolated.Adapter(namespaceQuotaBytes: 100, globalQuotaBytes: 200);
        var (ns, other, third) = (NewNamespace(), NewNamespace(), NewNamespace());
        await adapter.SetAsync(ns, "live", Bytes(87), null, null, None);
        await adapter.SetAsync(ns, "expired", Bytes(3), 60, null, None);
        await adapter.SetAsync(other, "expired", Bytes(60), 60, null, None);
        await adapter.SetAsync(third, "live", Bytes(50), null, null, None);
        await isolated.ExpireAsync(ns, "expired");
        await isolated.ExpireAsync(other, "expired");

        // 101 bytes in the namespace until its own expired entry goes; 208 counted globally, 148 of them live.
        await adapter.SetAsync(ns, "new", Bytes(11), null, null, None);

        Assert.True((await adapter.GetAsync(ns, "new", None)).Found);
        Assert.Equal((98L, 98L, 2L), await isolated.UsageAsync(ns));
        await isolated.DisposeAsync();
    }
}
