using KvWorker.Configuration;
using Npgsql;

namespace KvWorker.Tests.Infrastructure;

/// <summary>One fresh database with the worker's schema, shared by a collection; tests isolate by namespace.</summary>
public sealed class DatabaseFixture : IAsyncLifetime
{
    private readonly string _name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];

    public string ConnectionString { get; private set; } = "";
    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        ConnectionString = await TestServers.CreateDatabaseAsync(_name);
        DataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(ConnectionString) { MaxPoolSize = 100 }.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await TestServers.DropDatabaseAsync(_name);
    }

    public PostgresKvStoreAdapter Adapter(long namespaceQuotaBytes = PostgresAdapterOptions.DefaultNamespaceQuotaBytes, long? globalQuotaBytes = null) =>
        new(DataSource, new PostgresAdapterOptions { NamespaceQuotaBytes = namespaceQuotaBytes, GlobalQuotaBytes = globalQuotaBytes }, new KvLimits());

    /// <summary>What the usage counter says, and what the live entries really hold.</summary>
    public async Task<(long CountedBytes, long LiveBytes, long LiveEntries)> UsageAsync(string ns)
    {
        const string sql = """
            SELECT coalesce((SELECT used_bytes FROM kv_namespace_usage WHERE namespace = $1), 0),
                   coalesce(sum(octet_length(value)) FILTER (WHERE expires_at IS NULL OR expires_at > now()), 0)::bigint,
                   count(*) FILTER (WHERE expires_at IS NULL OR expires_at > now())
              FROM kv_entries WHERE namespace = $1
            """;
        await using var command = DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }

    /// <summary>Takes a namespace's lock, as its writers and the purge do, in a transaction of its own that holds it until ended.</summary>
    public async Task<NpgsqlTransaction> LockNamespaceAsync(string ns)
    {
        var connection = await DataSource.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand("SELECT kv_lock_namespaces($1)", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter { Value = new[] { ns } });
        await command.ExecuteNonQueryAsync();
        return transaction;
    }

    /// <summary>Waits, up to five seconds, until some session of this database waits for a lock; fails the test if none does.</summary>
    public async Task WaitForALockWaiterAsync()
    {
        await using var command = DataSource.CreateCommand(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()");
        for (var i = 0; (long)(await command.ExecuteScalarAsync())! == 0; i++)
        {
            if (i == 200) Assert.Fail("no session of the database waited for a lock within 5 s");
            await Task.Delay(25);
        }
    }

    /// <summary>Moves an entry's expiry into the past, as if its TTL had run out.</summary>
    public async Task ExpireAsync(string ns, string key)
    {
        const string sql = "UPDATE kv_entries SET expires_at = now() - interval '1 second' WHERE namespace = $1 AND key = $2";
        await using var command = DataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter { Value = ns });
        command.Parameters.Add(new NpgsqlParameter { Value = key });
        Assert.Equal(1, await command.ExecuteNonQueryAsync());
    }
}

[CollectionDefinition(Name)]
public sealed class DatabaseCollection : ICollectionFixture<DatabaseFixture>
{
    public const string Name = "database";
}
