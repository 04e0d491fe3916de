using KvWorker.Postgres;
using Npgsql;
using Testcontainers.PostgreSql;

namespace KvWorker.Redis.Tests;

/// <summary>
/// A fresh PostgreSQL database with the worker's schema, for the tests that hold the Redis
/// provider against the PostgreSQL one. The server is the one named by KV_TEST_POSTGRES (an
/// Npgsql connection string of a user that may create databases; scripts/test.sh sets it), or a
/// container when that is unset, as for tests/KvWorker.Tests. Without either, the tests fail.
/// </summary>
public sealed class PostgresTestDatabase : IAsyncLifetime
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PostgreSqlContainer? _container;

    private readonly string _name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
    private string _admin = "";

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _admin = await ServerAsync();
        await using (var admin = NpgsqlDataSource.Create(_admin))
        await using (var create = admin.CreateCommand($"CREATE DATABASE \"{_name}\""))
            await create.ExecuteNonQueryAsync();
        DataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(_admin) { Database = _name }.ConnectionString);
        await PostgresSchema.MigrateAsync(DataSource, _ => { }, CancellationToken.None);
    }

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
        NpgsqlConnection.ClearAllPools();
        await using var admin = NpgsqlDataSource.Create(_admin);
        await KvWorker.Bench.Deployment.DropDatabaseAsync(admin, _name);
    }

    private static async Task<string> ServerAsync()
    {
        var configured = Environment.GetEnvironmentVariable("KV_TEST_POSTGRES");
        if (!string.IsNullOrEmpty(configured)) return configured;
        await Gate.WaitAsync();
        try
        {
            if (_container is null)
            {
                var container = new PostgreSqlBuilder("postgres:15").Build();
                await container.StartAsync();
                _container = container;
            }
            return _container.GetConnectionString();
        }
        finally
        {
            Gate.Release();
        }
    }
}
