using KvWorker.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace KvWorker.Redis;

/// <summary>Every Redis primary answers a PING through the provider's own connection.</summary>
public sealed class RedisHealthCheck(KvStoreAdapterRegistry adapters) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var redis = (RedisKvStoreAdapter)adapters.Get("redis");
        try
        {
            await redis.PingAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (KvStoreUnavailableException ex)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "Redis unreachable", ex);
        }
    }
}
