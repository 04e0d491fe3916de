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
            // The provider connects on first use, which with Redis down or not answering blocks for up
            // to the client's connect time-out (5 s by default) for each of its tries (3): the connection
            // is set up on another thread, and the check waits for it no longer than its own time.
            var redis = (RedisKvStoreAdapter)await Task.Run(() => adapters.Get("redis"), CancellationToken.None).WaitAsync(cancellationToken);
            await redis.PingAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (KvStoreUnavailableException ex)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "Redis unreachable", ex);
        }
    }
}
