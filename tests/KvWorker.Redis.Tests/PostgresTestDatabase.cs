using KvWorker.Tests.Infrastructure;
using Npgsql;

namespace KvWorker.Redis.Tests;

/// <summary>
/// A fresh PostgreSQL database with the worker's schema, for the tests that hold the Redis
/// provider against the PostgreSQL one, on the server of tests/KvWorker.Tests (TestServers).
/// </summary>
public sealed class PostgresTestDatabase : IAsyncLifetime
{
    private readonly string _name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync() => DataSource = NpgsqlDataSource.Create(await TestServers.CreateDatabaseAsync(_name));

    /// <summary>Empties the store: no entries, counters, request identities or waiting events.</summary>
    public async Task ClearAsync()
    {
        const string sql = """
            TRUNCATE kv_entries, kv_namespace_usage, kv_processed_requests, kv_outbox;
            UPDATE kv_global_usage SET used_bytes = 0, entry_count = 0;
            """;
        await using var command = DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await TestServers.DropDatabaseAsync(_name);
    }
}
