using KvWorker.Storage;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// The adapter's connection, set up in the background: creating the provider must not block a
/// thread, and a first connect to a Redis that is down or does not answer takes up to the connect
/// time-out (5 s by default) for each of its tries (3). Operations wait for it within their own
/// time. With <see cref="ConfigurationOptions.AbortOnConnectFail"/> off, a first connect that fails
/// still yields the multiplexer, not connected, which keeps reconnecting by itself; commands sent
/// until it is connected fail at once (<see cref="BacklogPolicy.FailFast"/>), and are retried.
/// </summary>
internal sealed class RedisConnection(ConfigurationOptions configuration) : IAsyncDisposable
{
    private readonly Task<ConnectionMultiplexer> _connecting = ConnectionMultiplexer.ConnectAsync(configuration);

    /// <summary>
    /// The multiplexer once its first connect has ended, connected or not. When
    /// <paramref name="cancellationToken"/> ends the wait first, Redis is unavailable
    /// (<see cref="KvStoreUnavailableException"/>), as when a command finds the connection down.
    /// </summary>
    public async Task<IConnectionMultiplexer> MultiplexerAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _connecting.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            throw new KvStoreUnavailableException("redis unreachable: still connecting", ex);
        }
    }

    public async Task<IDatabase> DatabaseAsync(CancellationToken cancellationToken) =>
        (await MultiplexerAsync(cancellationToken)).GetDatabase();

    public async ValueTask DisposeAsync()
    {
        if (_connecting.IsCompletedSuccessfully) await _connecting.Result.DisposeAsync();
        // A first connect cannot be cancelled, and may take 15 s: the multiplexer is closed when it
        // ends, rather than holding up the disposal (the worker's shutdown) until then.
        else _ = _connecting.ContinueWith(connecting => connecting.Result.Dispose(), CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }
}
