using KvWorker.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Polly;
using Polly.Retry;

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
            {
                // The connection string takes the pool settings, which Npgsql refuses with an exception when out of range.
                var failures = options.Validate()
                    .Concat(OptionsValidation.DroppedFromList(configuration.GetSection(PostgresAdapterOptions.Section + ":quota_thresholds"), numbers: true))
                    .ToList();
                return failures.Count > 0 ? failures : PostgresConnection.Problems(options, configuration);
            });
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

/// <summary>
/// Brings the schema up to date before the worker takes messages. A PostgreSQL that cannot be
/// reached yet (not started, restarting) is waited for, as MassTransit waits for RabbitMQ, with a
/// warning per attempt; one that answers but refuses the worker (a database that does not exist, a
/// password it rejects, a schema a newer release upgraded) ends start-up with a
/// <see cref="PostgresStartupException"/>, since waiting cannot help, and so does a stop while waiting.
/// </summary>
public sealed class PostgresStartup(
    NpgsqlDataSource dataSource, IOptions<PostgresAdapterOptions> options, IConfiguration configuration, ILogger<PostgresStartup> logger)
    : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The section is the original tool's, which ATLAS's own adapter may read keys of its own from:
        // an unknown key is most likely misspelt, but is not refused.
        foreach (var unknown in OptionsValidation.UnknownKeys(configuration.GetSection(PostgresAdapterOptions.Section), typeof(PostgresAdapterOptions)))
            logger.LogWarning("{Unknown}; ignored", unknown);
        var server = Describe(dataSource);
        var untilReachable = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<NpgsqlException>(PostgresFaults.IsTransient),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromSeconds(1),
            MaxDelay = TimeSpan.FromSeconds(10),
            // Until it answers or the worker is stopped, whose cancellation ends the retries.
            MaxRetryAttempts = int.MaxValue,
            OnRetry = retry =>
            {
                logger.LogWarning("Cannot reach PostgreSQL at {Server} yet, trying again in {Delay:0.#} s: {Message}",
                    server, retry.RetryDelay.TotalSeconds, retry.Outcome.Exception?.Message);
                return default;
            },
        }).Build();
        try
        {
            await untilReachable.ExecuteAsync(async token => await MigrateAsync(token), cancellationToken);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped (SIGTERM) while waiting: the worker never started, and says so in one line.
            throw new PostgresStartupException($"stopped while waiting for PostgreSQL at {server}", ex);
        }
        catch (PostgresException ex) when (!PostgresFaults.IsTransient(ex))
        {
            throw new PostgresStartupException($"PostgreSQL at {server} refused the worker: {ex.SqlState}: {ex.MessageText}", ex);
        }
        logger.LogInformation("PostgreSQL schema is up to date ({Scripts} scripts)", PostgresSchema.Scripts.Count);
    }

    private async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await PostgresSchema.MigrateAsync(dataSource, line => logger.LogDebug("Evolve: {Line}", line), cancellationToken);
        if (options.Value.GlobalQuotaBytes is not null)
        {
            // The global counter is only kept while a global quota is set: re-derive it.
            const string sql = "SELECT kv_recompute_global_usage()";
            await using var command = dataSource.CreateCommand(sql);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        if (options.Value.RequireSynchronousReplication) await WarnUnlessSynchronousAsync(cancellationToken);
    }

    /// <summary>Says at once what would otherwise show only as every write's StoreUnavailableError.</summary>
    private async Task WarnUnlessSynchronousAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SynchronousReplication.SettingsSql);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        if (SynchronousReplication.Lacking(reader.GetString(0), reader.GetString(1)) is { } lacking)
            logger.LogWarning("PostgreSQL at {Server} does not replicate synchronously ({Settings}): under require_synchronous_replication, "
                + "writes are answered StoreUnavailableError until it does", Describe(dataSource), lacking);
    }

    /// <summary>Host, port and database, as an operator recognises them; never the password.</summary>
    private static string Describe(NpgsqlDataSource dataSource)
    {
        var settings = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        // A multi-host URL's hosts carry their own ports.
        var hosts = settings.Host?.Contains(',') == true ? settings.Host : $"{settings.Host}:{settings.Port}";
        return $"{hosts} (database {settings.Database})";
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Start-up ends without PostgreSQL: it answered but the worker cannot use it, or the worker was stopped while waiting for it.</summary>
public sealed class PostgresStartupException(string message, Exception? innerException = null) : Exception(message, innerException);
