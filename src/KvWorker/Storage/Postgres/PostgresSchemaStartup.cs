using KvWorker.Configuration;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Storage.Postgres;

/// <summary>Brings the schema up to date before the worker takes messages.</summary>
public sealed class PostgresSchemaStartup(
    NpgsqlDataSource dataSource, IOptions<KvStoreOptions> options, ILogger<PostgresSchemaStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await SchemaMigrator.MigrateAsync(dataSource, cancellationToken);
        if (options.Value.Adapters.Postgres.GlobalQuotaBytes is not null)
        {
            // The global counter is only kept while a global quota is set: re-derive it.
            const string sql = "SELECT kv_recompute_global_usage()";
            await using var command = dataSource.CreateCommand(sql);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        logger.LogInformation("PostgreSQL schema is up to date ({Scripts} scripts)", SchemaMigrator.Scripts.Count);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
