using KvWorker.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace KvWorker.Redis;

public static class RedisKvStoreExtensions
{
    /// <summary>
    /// The <c>redis</c> provider with its validated options (<c>tools:kv_store:adapters:redis</c>)
    /// and a <c>redis</c> readiness check tagged <paramref name="readyTag"/>, registered only when
    /// <paramref name="configuration"/> names a Redis server there.
    /// </summary>
    public static IServiceCollection AddRedisKvStore(this IServiceCollection services, IConfiguration configuration, string readyTag = "ready")
    {
        if (!RedisAdapterOptions.IsConfigured(configuration)) return services;
        services.AddOptions<RedisAdapterOptions>().BindConfiguration(RedisAdapterOptions.Section)
            .ValidateEach(options => options.Validate())
            .ValidateEach<RedisAdapterOptions, IConfiguration>((_, configuration) =>
                OptionsValidation.DroppedFromList(configuration.GetSection(RedisAdapterOptions.Section + ":quota_thresholds"), numbers: true))
            .RefuseUnknownKeys(RedisAdapterOptions.Section);
        services.AddKvStoreAdapter("redis", provider => RedisKvStoreAdapter.Connect(
            provider.GetRequiredService<IOptions<RedisAdapterOptions>>().Value,
            provider.GetRequiredService<IOptions<KvLimits>>().Value.MaxIntegerDigits,
            provider.GetRequiredService<IKvEventPublisher>(),
            provider.GetRequiredService<ILogger<RedisKvStoreAdapter>>()));
        services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis", tags: [readyTag], timeout: RedisHealthCheck.Timeout);
        return services;
    }
}
