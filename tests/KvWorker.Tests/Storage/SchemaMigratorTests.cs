using KvWorker.Storage.Postgres;
using KvWorker.Tests.Infrastructure;
using Npgsql;

namespace KvWorker.Tests.Storage;

public sealed class SchemaMigratorTests
{
    [Fact]
    public async Task Replicas_starting_together_apply_each_script_exactly_once()
    {
        var name = "kvtest_" + Guid.NewGuid().ToString("N")[..12];
        var connectionString = await TestServers.CreateEmptyDatabaseAsync(name);
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);

            await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => SchemaMigrator.MigrateAsync(dataSource, CancellationToken.None))));
            await SchemaMigrator.MigrateAsync(dataSource, CancellationToken.None); // and again, later

            await using var command = dataSource.CreateCommand("SELECT name FROM kv_schema_migrations ORDER BY name");
            var applied = new List<string>();
            await using (var reader = await command.ExecuteReaderAsync())
                while (await reader.ReadAsync()) applied.Add(reader.GetString(0));
            Assert.Equal(SchemaMigrator.Scripts.Select(s => s.Name), applied);
            Assert.Contains("001_tables.sql", applied);
        }
        finally
        {
            await TestServers.DropDatabaseAsync(name);
        }
    }
}
