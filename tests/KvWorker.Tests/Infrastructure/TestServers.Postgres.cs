using KvWorker.Postgres;
using Npgsql;
using Testcontainers.PostgreSql;

namespace KvWorker.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL server of the tests: the one KV_TEST_POSTGRES names (an Npgsql connection string
/// of a user that may create databases; scripts/test.sh sets it), or a container when that is unset.
/// Compiled into tests/KvWorker.Redis.Tests too, for the tests that hold Redis against PostgreSQL.
/// </summary>
public static partial class TestServers
{
    private static readonly SemaphoreSlim PostgresGate = new(1, 1);
    private static PostgreSqlContainer? _postgresContainer;

    /// <summary>An Npgsql connection string for a superuser, to create one database per collection.</summary>
    public static async Task<string> PostgresAdminAsync()
    {
        var configured = Environment.GetEnvironmentVariable("KV_TEST_POSTGRES");
        if (!string.IsNullOrEmpty(configured)) return configured;
        await PostgresGate.WaitAsync();
        try
        {
            if (_postgresContainer is null)
            {
                var container = new PostgreSqlBuilder("postgres:15").Build();
                await container.StartAsync();
                _postgresContainer = container;
            }
            return _postgresContainer.GetConnectionString();
        }
        finally
        {
            PostgresGate.Release();
        }
    }

    /// <summary>Creates a fresh database with the worker's schema; returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string name)
    {
        var connectionString = await CreateEmptyDatabaseAsync(name);
        await using (var dataSource = NpgsqlDataSource.Create(connectionString))
            await PostgresSchema.MigrateAsync(dataSource, _ => { }, CancellationToken.None);
        return connectionString;
    }

    public static async Task<string> CreateEmptyDatabaseAsync(string name)
    {
        var admin = await PostgresAdminAsync();
        await using (var dataSource = NpgsqlDataSource.Create(admin))
        await using (var command = dataSource.CreateCommand($"CREATE DATABASE \"{name}\""))
            await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
    }

    public static async Task DropDatabaseAsync(string name)
    {
        NpgsqlConnection.ClearAllPools();
        await using var dataSource = NpgsqlDataSource.Create(await PostgresAdminAsync());
        await KvWorker.Bench.Deployment.DropDatabaseAsync(dataSource, name);
    }
}
