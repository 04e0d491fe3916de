using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>
/// PostgreSQL answers a query, asked on a connection of the check's own: with the requests'
/// pool exhausted by a busy replica, the check would otherwise wait for a free connection and
/// report a database that is up as unreachable, and an orchestrator restart a healthy replica.
/// </summary>
public sealed class PostgresHealthCheck : IHealthCheck, IAsyncDisposable, IDisposable
{
    /// <summary>Seconds to connect and to run the query, within the check's own 5 s.</summary>
    public const int TimeoutSeconds = 2;

    private readonly NpgsqlDataSource _dataSource;

    /// <param name="connectionString">The worker's connection string: the check keeps one connection of its own to the same server.</param>
    public PostgresHealthCheck(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            // One connection is enough for probes seconds apart; a second probe at once waits for it.
            MinPoolSize = 0,
            MaxPoolSize = 1,
            Timeout = TimeoutSeconds,
            CommandTimeout = TimeoutSeconds,
        };
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = _dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            // The reason in the description, where /health/ready shows it; without the exception, whose stack
            // trace the health check service would log at every failed probe while PostgreSQL is down.
            return new HealthCheckResult(context.Registration.FailureStatus, $"PostgreSQL unreachable: {ex.Message}");
        }
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    public void Dispose() => _dataSource.Dispose();
}
