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

    /// <summary>Holds a namespace's lock in a transaction of its own until disposed.</summary>
    private async Task<NpgsqlTransaction> LockNamespaceAsync(string ns)
    {
        var connection = await db.DataSource.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("SELECT kv_lock_namespace($1)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        await command.ExecuteNonQueryAsync();
        return transaction;
    }

    private async Task WaitForALockWaiterAsync()
    {
        await using var command = db.DataSource.CreateCommand(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()");
        for (var i = 0; i < 200 && (long)(await command.ExecuteScalarAsync())! == 0; i++) await Task.Delay(25);
    }

    [Fact]
    public async Task Commands_grouped_in_one_transaction_each_get_their_own_result_and_rejections_do_not_spread()
    {
        var adapter = new PostgresKvStoreAdapter(db.DataSource,
            new PostgresAdapterOptions { NamespaceQuotaBytes = 100, GroupCommit = new GroupCommitOptions { Transactions = 1 } },
            new KvLimits());
        var (blocked, ok, full, text) = (NewNamespace(), NewNamespace(), NewNamespace(), NewNamespace());
        await adapter.SetAsync(full, "big", Value($"\"{new string('x', 90)}\""), null, null, None);
        await adapter.SetAsync(text, "t", Value("\"not a number\""), null, null, None);
        var groupsBefore = adapter.Groups;

        // The only transaction slot waits on a lock, so the next commands gather behind it.
        var holder = await LockNamespaceAsync(blocked);
        var first = adapter.SetAsync(blocked, "k", Value("1"), null, null, None);
        await WaitForALockWaiterAsync();
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
    public async Task A_command_that_fails_its_group_fails_alone_and_its_neighbours_succeed()
    {
        var group = new GroupCommit(db.DataSource, maxCommands: 100, transactions: 1, lockNamespacesFirst: false);
        var blocked = NewNamespace();
        var holder = await LockNamespaceAsync(blocked);
        var first = group.RunAsync(blocked, writes: true, () => new NpgsqlBatchCommand("SELECT kv_lock_namespace('" + blocked + "')"), _ => 0, None);
        await WaitForALockWaiterAsync();

        Task<int> Query(string sql) => group.RunAsync("queries", writes: false, () => new NpgsqlBatchCommand(sql), r => r.GetInt32(0), None);
        var one = Query("SELECT 1");
        var broken = Query("SELECT 1 / 0");
        var two = Query("SELECT 2");
        await holder.CommitAsync();
        await holder.Connection!.DisposeAsync();

        await first;
        Assert.Equal(1, await one);
        Assert.Equal(2, await two);
        var error = await Assert.ThrowsAsync<PostgresException>(() => broken);
        Assert.Equal(PostgresErrorCodes.DivisionByZero, error.SqlState);
        // The blocked group, the failed group of three, then each of the three alone.
        Assert.Equal(5, group.Groups);
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
}
