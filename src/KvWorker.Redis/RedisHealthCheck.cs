using KvWorker.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KvWorker.Redis;

/// <summary>Every Redis primary answers a PING through the provider's own connection.</summary>
public sealed class RedisHealthCheck(KvStoreAdapterRegistry adapters) : IHealthCheck
{
    /// <summary>The check's time: past it, it reports unhealthy, so a probe is answered before its own time-out.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            // The provider connects in the background; the ping waits for the connection within the check's time.
            await ((RedisKvStoreAdapter)adapters.Get("redis")).PingAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (KvStoreUnavailableException ex)
        {
            // The reason in the description, without the exception: as PostgresHealthCheck.
            return new HealthCheckResult(context.Registration.FailureStatus, $"Redis unreachable: {ex.Message}");
        }
    }
}
