using KvWorker.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Postgres;

public static class PostgresKvStoreExtensions
{
    /// <summary>
    /// The <c>postgres</c> provider with its validated options (<c>tools:kv_store:adapters:postgres</c>),
    /// one <see cref="NpgsqlDataSource"/>, the schema brought up to date at start-up (register this
    /// before anything that takes messages), the outbox publisher, the purge schedule and a
    /// <c>postgres</c> readiness check tagged <paramref name="readyTag"/>, on a connection of its own.
    /// </summary>
    public static IServiceCollection AddPostgresKvStore(this IServiceCollection services, string readyTag = "ready")
    {
        services.AddOptions<PostgresAdapterOptions>().BindConfiguration(PostgresAdapterOptions.Section)
            .ValidateEach<PostgresAdapterOptions, IConfiguration>((options, configuration) =>
                options.Validate().Concat(PostgresConnection.Problems(options, configuration)));
        services.AddSingleton(provider => NpgsqlDataSource.Create(PostgresConnection.Resolve(
            provider.GetRequiredService<IOptions<PostgresAdapterOptions>>().Value, provider.GetRequiredService<IConfiguration>())));
        services.AddKvStoreAdapter("postgres", provider => new PostgresKvStoreAdapter(
            provider.GetRequiredService<NpgsqlDataSource>(),
            provider.GetRequiredService<IOptions<PostgresAdapterOptions>>().Value,
            provider.GetRequiredService<IOptions<KvLimits>>().Value));
        services.AddSingleton<PurgeSchedule>();
        services.AddHostedService<PostgresStartup>();
        services.AddHostedService<OutboxPublisher>();
        // One instance, created once, so that its own connection outlives each probe.
        services.AddSingleton(provider => new PostgresHealthCheck(PostgresConnection.Resolve(
            provider.GetRequiredService<IOptions<PostgresAdapterOptions>>().Value, provider.GetRequiredService<IConfiguration>())));
        services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgres", tags: [readyTag], timeout: TimeSpan.FromSeconds(5));
        return services;
    }
}

/// <summary>Brings the schema up to date before the worker takes messages.</summary>
public sealed class PostgresStartup(
    NpgsqlDataSource dataSource, IOptions<PostgresAdapterOptions> options, ILogger<PostgresStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await PostgresSchema.MigrateAsync(dataSource, line => logger.LogDebug("Evolve: {Line}", line), cancellationToken);
        if (options.Value.GlobalQuotaBytes is not null)
        {
            // The global counter is only kept while a global quota is set: re-derive it.
            const string sql = "SELECT kv_recompute_global_usage()";
            await using var command = dataSource.CreateCommand(sql);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        logger.LogInformation("PostgreSQL schema is up to date ({Scripts} scripts)", PostgresSchema.Scripts.Count);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
