using Npgsql;

namespace KvWorker.Tests.Storage;

/// <summary>Which PostgreSQL errors are retried: those a failover or contention causes, not the request's own faults.</summary>
[Collection(DatabaseCollection.Name)]
public sealed class PostgresFaultsTests(DatabaseFixture db)
{
    [Theory]
    [InlineData(PostgresErrorCodes.AdminShutdown)]           // a failover stopping the old primary
    [InlineData(PostgresErrorCodes.CannotConnectNow)]        // a node still starting
    [InlineData(PostgresErrorCodes.ReadOnlySqlTransaction)]  // a connection that reached a standby
    [InlineData(PostgresErrorCodes.ConnectionFailure)]
    [InlineData(PostgresErrorCodes.SerializationFailure)]
    public void Failover_and_contention_errors_are_transient(string sqlState) =>
        Assert.True(PostgresFaults.IsTransient(new PostgresException("", "FATAL", "FATAL", sqlState)));

    [Fact]
    public void Failing_to_reach_a_server_is_transient_also_when_a_multi_host_url_finds_no_host_of_the_wanted_kind()
    {
        Assert.True(PostgresFaults.IsTransient(new NpgsqlException("No suitable host was found.")));
        Assert.True(PostgresFaults.IsTransient(new NpgsqlException("Failed to connect to 127.0.0.1:16811", new System.Net.Sockets.SocketException(111))));
    }

    [Theory]
    [InlineData(PostgresErrorCodes.UniqueViolation)]
    [InlineData(PostgresErrorCodes.UndefinedFunction)]
    public void Errors_of_the_request_or_the_schema_are_not(string sqlState) =>
        Assert.False(PostgresFaults.IsTransient(new PostgresException("", "ERROR", "ERROR", sqlState)));

    [Fact]
    public async Task A_write_that_lands_on_a_read_only_server_is_reported_as_unavailable_storage_so_it_is_retried()
    {
        var readOnly = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Options = "-c default_transaction_read_only=on" };
        await using var dataSource = NpgsqlDataSource.Create(readOnly.ConnectionString);
        var adapter = new PostgresKvStoreAdapter(dataSource, new PostgresAdapterOptions(), new KvLimits());

        var error = await Assert.ThrowsAsync<KvStoreUnavailableException>(() =>
            adapter.IncrementAsync(new KvIncrement { Namespace = "ns-" + Guid.NewGuid().ToString("N"), Key = "k" }, null, CancellationToken.None));

        Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, Assert.IsType<PostgresException>(error.InnerException).SqlState);
    }

    [Fact]
    public async Task Under_require_synchronous_replication_a_write_on_a_server_without_a_synchronous_standby_is_refused_as_unavailable_storage_and_not_made()
    {
        // The test server is a single one: it has no synchronous standby to wait for.
        await using (var show = db.DataSource.CreateCommand("SHOW synchronous_standby_names"))
            Assert.Equal("", await show.ExecuteScalarAsync());
        var ns = "ns-" + Guid.NewGuid().ToString("N");
        var adapter = new PostgresKvStoreAdapter(db.DataSource, new PostgresAdapterOptions { RequireSynchronousReplication = true }, new KvLimits());

        var refused = await Assert.ThrowsAsync<KvStoreUnavailableException>(() =>
            adapter.IncrementAsync(new KvIncrement { Namespace = ns, Key = "k" }, null, CancellationToken.None));
        Assert.IsType<NotReplicatedException>(refused.InnerException);
        Assert.Contains("synchronous_standby_names ''", refused.Message);
        await Assert.ThrowsAsync<KvStoreUnavailableException>(() =>
            adapter.SetAsync(ns, "k", StoredValue.From(StoredValue.Parse("1"), maxDepth: 32), null, "request-" + ns, CancellationToken.None));

        // Nothing was written, reads are served, and without the setting the same write is made.
        Assert.Equal((0, 0, 0), await db.UsageAsync(ns));
        Assert.False((await adapter.GetAsync(ns, "k", CancellationToken.None)).Found);
        Assert.Equal(1L, (await db.Adapter().IncrementAsync(new KvIncrement { Namespace = ns, Key = "k" }, null, CancellationToken.None)).Value.GetInt64());
    }
}
