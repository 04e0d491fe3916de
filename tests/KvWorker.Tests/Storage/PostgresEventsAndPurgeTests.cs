using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>The batched purge, its lock, and request identity, checked in the database itself (the
/// conformance suite covers the events both adapters report).</summary>
[Collection(DatabaseCollection.Name)]
public sealed class PostgresEventsAndPurgeTests(DatabaseFixture db)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static string NewNamespace() => "ns-" + Guid.NewGuid().ToString("N");

    /// <summary>A JSON string value of exactly <paramref name="bytes"/> UTF-8 bytes.</summary>
    private static StoredValue Bytes(int bytes) =>
        StoredValue.From(JsonDocument.Parse($"\"{new string('x', bytes - 2)}\"").RootElement.Clone(), maxDepth: 32);

    private async Task<List<JsonElement>> OutboxAsync(string eventType, string ns)
    {
        const string sql = "SELECT payload FROM kv_outbox WHERE event_type = $1 AND payload::json->>'namespace' = $2 ORDER BY id";
        await using var command = db.DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = eventType });
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        await using var reader = await command.ExecuteReaderAsync();
        var events = new List<JsonElement>();
        while (await reader.ReadAsync()) events.Add(JsonDocument.Parse(reader.GetString(0)).RootElement.Clone());
        return events;
    }

    private Task<KvPurgeResult> PurgeAsync(int batchSize = 1000, double retentionSeconds = 86400) =>
        new PostgresPurge(db.DataSource, new PostgresAdapterOptions { PurgeBatchSize = batchSize, RequestRetentionSeconds = retentionSeconds })
            .RunAsync(null, None);

    [Fact]
    public async Task The_purge_removes_expired_entries_in_bounded_batches_frees_their_usage_and_reports_each_batch()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        for (var i = 0; i < 25; i++)
        {
            await adapter.SetAsync(ns, $"k{i}", Bytes(10), 60, null, None);
            await db.ExpireAsync(ns, $"k{i}");
        }
        await adapter.SetAsync(ns, "live", Bytes(10), 60, null, None);

        await PurgeAsync(batchSize: 10);

        Assert.Equal((10L, 10L, 1L), await db.UsageAsync(ns));
        var events = await OutboxAsync("KvEntriesExpired", ns);
        Assert.Equal(25, events.Sum(e => e.GetProperty("count").GetInt64()));
        Assert.Equal(250, events.Sum(e => e.GetProperty("bytes_freed").GetInt64()));
        // One transaction per batch of at most 10 rows: at least three of them.
        Assert.True(events.Count >= 3, $"{events.Count} batches");
        Assert.All(events, e => Assert.InRange(e.GetProperty("count").GetInt64(), 1, 10));
    }

    [Fact]
    public async Task The_purge_reports_its_time_in_utc_whatever_the_session_time_zone()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Bytes(10), 60, null, None);
        await db.ExpireAsync(ns, "k");

        // A server (or PGTZ) whose time zone is not UTC.
        var connectionString = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Timezone = "Asia/Kolkata" }.ConnectionString;
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await new PostgresPurge(dataSource, new PostgresAdapterOptions()).RunAsync(ns, None);

        var at = Assert.Single(await OutboxAsync("KvEntriesExpired", ns)).GetProperty("at").GetString()!;
        Assert.EndsWith("+00:00", at);
    }

    [Fact]
    public async Task Only_one_purge_runs_at_a_time_the_others_do_nothing_and_say_so()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Bytes(10), 60, null, None);
        await db.ExpireAsync(ns, "k");

        // Another replica's purge holds the lock.
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using var hold = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", connection, transaction);
            hold.Parameters.Add(new NpgsqlParameter { Value = PostgresPurge.PurgeLockKey });
            await hold.ExecuteNonQueryAsync();

            var skipped = await PurgeAsync();
            Assert.False(skipped.Ran);
            Assert.Equal(0, skipped.Entries);
            Assert.Equal(10, (await db.UsageAsync(ns)).CountedBytes);
        }

        Assert.True((await PurgeAsync()).Ran);
        Assert.Equal(0, (await db.UsageAsync(ns)).CountedBytes);
        Assert.Single(await OutboxAsync("KvEntriesExpired", ns));
    }

    [Fact]
    public async Task Two_purges_racing_remove_each_expired_entry_once()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        for (var i = 0; i < 40; i++)
        {
            await adapter.SetAsync(ns, $"k{i}", Bytes(10), 60, null, None);
            await db.ExpireAsync(ns, $"k{i}");
        }

        await Task.WhenAll(PurgeAsync(batchSize: 3), PurgeAsync(batchSize: 3), PurgeAsync(batchSize: 3));
        await PurgeAsync(); // whatever a skipped turn left

        Assert.Equal((0L, 0L, 0L), await db.UsageAsync(ns));
        Assert.Equal(40, (await OutboxAsync("KvEntriesExpired", ns)).Sum(e => e.GetProperty("count").GetInt64()));
    }

    [Fact]
    public async Task Concurrent_deliveries_of_one_increment_apply_it_once_and_all_answer_alike()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        var requestId = Guid.NewGuid().ToString();

        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            Task.Run(() => adapter.IncrementAsync(ns, "c", 5, 100, 60, requestId, None))));

        Assert.All(results, r => Assert.Equal(105, r.Value.GetInt64()));
        Assert.Single(results.Select(r => r.TtlSeconds).Distinct());
        var current = await adapter.GetAsync(ns, "c", None);
        Assert.Equal(105, current.Value!.Value.GetInt64());
    }

    [Fact]
    public async Task A_processed_request_is_forgotten_after_its_retention_and_then_applies_again()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        var requestId = Guid.NewGuid().ToString();
        await adapter.IncrementAsync(ns, "c", 1, 0, null, requestId, None);
        Assert.Equal(1, (await adapter.IncrementAsync(ns, "c", 1, 0, null, requestId, None)).Value.GetInt64());

        await using (var age = db.DataSource.CreateCommand("UPDATE kv_processed_requests SET processed_at = now() - interval '2 hours' WHERE request_id = $1"))
        {
            age.Parameters.Add(new NpgsqlParameter { Value = requestId });
            Assert.Equal(1, await age.ExecuteNonQueryAsync());
        }
        Assert.True((await PurgeAsync(retentionSeconds: 3600)).RequestsForgotten >= 1);

        Assert.Equal(2, (await adapter.IncrementAsync(ns, "c", 1, 0, null, requestId, None)).Value.GetInt64());
    }

    [Fact]
    public async Task A_message_id_reused_for_a_different_operation_is_a_clear_error()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        var requestId = Guid.NewGuid().ToString();
        await adapter.SetAsync(ns, "k", Bytes(10), null, requestId, None);

        var error = await Assert.ThrowsAsync<KvStoreException>(() => adapter.IncrementAsync(ns, "c", 1, 0, null, requestId, None));
        Assert.Equal("KeyValueStoreError", error.Code);
        Assert.Contains(requestId, error.Message);
    }

    [Fact]
    public async Task A_purge_whose_connection_is_lost_reports_the_store_unavailable_so_the_worker_retries()
    {
        var adapter = db.Adapter();
        var ns = NewNamespace();
        await adapter.SetAsync(ns, "k", Bytes(10), 60, null, None);
        await db.ExpireAsync(ns, "k");

        // The purge waits on the namespace's lock, held here, until its backend is terminated.
        var holder = await db.LockNamespaceAsync(ns);
        var purge = adapter.PurgeExpiredAsync(new PurgeExpiredEntries { Namespace = ns }, None);
        await using var terminate = db.DataSource.CreateCommand("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%kv_purge_expired%'
            """);
        for (var i = 0; i < 200 && (long)(await terminate.ExecuteScalarAsync())! == 0; i++) await Task.Delay(25);

        await Assert.ThrowsAsync<KvStoreUnavailableException>(() => purge);
        await holder.RollbackAsync();
        await holder.Connection!.DisposeAsync();
    }

    [Fact]
    public async Task An_outbox_row_of_an_unknown_type_or_unreadable_holds_up_no_other_event_and_stays()
    {
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        var ns = NewNamespace();
        var expired = $$"""{"namespace":"{{ns}}","count":1,"bytes_freed":10,"at":"2026-12-01T00:00:00+00:00"}""";
        await using (var insert = isolated.DataSource.CreateCommand("""
            INSERT INTO kv_outbox (event_type, payload)
            SELECT * FROM unnest(ARRAY['KvEntriesExpired', 'SomeEventOfANewerVersion', 'KvEntriesExpired', 'KvEntriesExpired'],
                                 ARRAY[$1, '{}', '{"count":"many"}', $1])
            """))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = expired });
            await insert.ExecuteNonQueryAsync();
        }
        var events = new RecordedEvents();
        var outbox = new OutboxPublisher(isolated.DataSource, events, Options.Create(new PostgresAdapterOptions()), NullLogger<OutboxPublisher>.Instance);

        var first = await outbox.PublishBatchAsync(None);
        var second = await outbox.PublishBatchAsync(None);

        Assert.Equal((2, 0), (first, second));
        Assert.Equal(2, events.All<KvEntriesExpired>().Count(e => e.Namespace == ns));
        await using var left = isolated.DataSource.CreateCommand("SELECT string_agg(event_type, ',' ORDER BY id) FROM kv_outbox");
        Assert.Equal("SomeEventOfANewerVersion,KvEntriesExpired", await left.ExecuteScalarAsync());
        await isolated.DisposeAsync();
    }

    [Fact]
    public async Task A_batch_the_broker_does_not_confirm_in_time_rolls_back_and_stays_in_the_outbox()
    {
        await using var isolated = new DatabaseFixture();
        await isolated.InitializeAsync();
        var ns = NewNamespace();
        await using (var insert = isolated.DataSource.CreateCommand("INSERT INTO kv_outbox (event_type, payload) VALUES ('KvEntriesExpired', $1)"))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = $$"""{"namespace":"{{ns}}","count":1,"bytes_freed":10,"at":"2026-12-01T00:00:00+00:00"}""" });
            await insert.ExecuteNonQueryAsync();
        }
        var options = Options.Create(new PostgresAdapterOptions { OutboxPublishTimeoutSeconds = 0.5 });
        var stuck = new OutboxPublisher(isolated.DataSource, new UnreachableBroker(), options, NullLogger<OutboxPublisher>.Instance);
        var events = new RecordedEvents();
        var working = new OutboxPublisher(isolated.DataSource, events, options, NullLogger<OutboxPublisher>.Instance);

        // Bounded here too, so that a publisher without its own bound fails the test instead of hanging it.
        using var testBound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Assert.ThrowsAsync<TimeoutException>(() => stuck.PublishBatchAsync(testBound.Token));
        await using (var open = isolated.DataSource.CreateCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"))
            Assert.Equal(0L, await open.ExecuteScalarAsync());
        var published = await working.PublishBatchAsync(None);

        Assert.Equal(1, published);
        Assert.Single(events.All<KvEntriesExpired>(), e => e.Namespace == ns);
        await isolated.DisposeAsync();
    }

    /// <summary>A broker that is not there: a publish waits until it is cancelled, as MassTransit's does while the broker is unreachable.</summary>
    private sealed class UnreachableBroker : IKvEventPublisher
    {
        public Task PublishAsync(object @event, CancellationToken cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);
    }
}
