using KvWorker.Storage;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>Turns a lost or refused Redis connection into the adapter seam's <see cref="KvStoreUnavailableException"/>, which the worker retries.</summary>
internal static class RedisFaults
{
    public static async Task<T> RunAsync<T>(Func<Task<T>> command, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            return await command().WaitAsync(cancellationToken);
        }
        catch (RedisConnectionException ex)
        {
            throw new KvStoreUnavailableException($"redis unreachable: {ex.Message}", ex);
        }
    }
}
