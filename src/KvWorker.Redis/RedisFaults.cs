using KvWorker.Storage;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// Turns a lost or refused Redis connection, and a server that cannot serve for now, into the
/// adapter seam's <see cref="KvStoreUnavailableException"/>, which the worker retries.
/// </summary>
internal static class RedisFaults
{
    /// <summary>
    /// The error replies of a server that cannot serve for now: loading its data after a restart,
    /// a cluster failing over or moving a slot, a replica not yet promoted, a long script running,
    /// memory full, writes stopped because its snapshots fail (a full disk, with Redis's default
    /// stop-writes-on-bgsave-error) or because too few replicas are in sync (min-replicas-to-write).
    /// </summary>
    private static readonly string[] UnavailablePrefixes =
        ["LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "BUSY", "OOM", "MISCONF", "NOREPLICAS"];

    /// <summary>
    /// Like <see cref="RunAsync{T}"/>, but a command once sent is waited for whatever the token says:
    /// Redis runs it even when nobody waits, and its reply says what the global counter must be given
    /// back. Redis's own time-out bounds the wait.
    /// </summary>
    public static Task<T> RunToReplyAsync<T>(Func<Task<T>> command, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return RunAsync(command, CancellationToken.None);
    }

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
        catch (RedisServerException ex) when (ErrorText(ex) is var error && UnavailablePrefixes.Any(prefix => error.StartsWith(prefix, StringComparison.Ordinal)))
        {
            throw new KvStoreUnavailableException($"redis unavailable: {error}", ex);
        }
    }

    /// <summary>
    /// The server's error reply. StackExchange.Redis at times puts the reply's RESP type before it
    /// ("SimpleError: MISCONF ...", seen on a DEL), where it usually gives the text alone.
    /// </summary>
    private static string ErrorText(RedisServerException ex)
    {
        const string typed = "SimpleError: ";
        return ex.Message.StartsWith(typed, StringComparison.Ordinal) ? ex.Message[typed.Length..] : ex.Message;
    }
}
