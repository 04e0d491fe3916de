using KvWorker.Storage;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// The global quota in a Redis Cluster, where no script can read every namespace's usage: one
/// counter in a slot of its own holds the bytes of all namespaces plus those granted to writes in
/// flight. A write that grows its namespace asks for the bytes here first, and its script applies
/// only what was granted; what a script frees (deletes, shrinking overwrites, expired entries) is
/// taken off after it. So the counter is never below what the namespaces hold, and a write that
/// the counter refuses would have pushed the store over the quota or was raced by writes in
/// flight. Replica failures between the two steps leave the counter too high (erring towards
/// rejecting), never too low. A store that held data before its global quota was set has no
/// counter: it is counted from what the namespaces hold before the first change (<see cref="CountedAsync"/>).
/// </summary>
internal sealed class RedisGlobalQuota(RedisConnection redis, RedisKeys keys, long quotaBytes, ILogger logger)
{
    private readonly Lock _gate = new();
    private Task<bool>? _counted;

    public long QuotaBytes => quotaBytes;

    /// <summary>Adds <paramref name="bytes"/> to the counter when they fit under the quota; the bytes used after, or before a refusal.</summary>
    public async Task<(bool Granted, long UsedBytes)> TryReserveAsync(long bytes, CancellationToken cancellationToken)
    {
        var database = await redis.DatabaseAsync(cancellationToken);
        var reply = (RedisResult[])(await RedisFaults.RunToReplyAsync(
            () => database.ScriptEvaluateAsync(RedisScripts.Reserve, [keys.GlobalBytes], [bytes, quotaBytes]), cancellationToken))!;
        return ((long)reply[0] == 1, (long)reply[1]);
    }

    /// <summary>
    /// Takes off what a script freed, or the part of a grant it did not use (<paramref name="bytes"/>
    /// is zero or less). Never throws: a failure only leaves the counter too high, so it is logged.
    /// </summary>
    public async Task SettleAsync(long bytes)
    {
        if (bytes == 0) return;
        try
        {
            // Connected: the script or grant being settled has answered.
            var database = await redis.DatabaseAsync(CancellationToken.None);
            await database.StringIncrementAsync(keys.GlobalBytes, bytes);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning("The global usage counter stays {Bytes} bytes too high: {Message}", -bytes, ex.Message);
        }
    }

    /// <summary>
    /// Waits until the counter exists. Every script that changes a namespace's bytes waits for this
    /// first, since the count must not include a change that is then added or taken off again. The
    /// first caller counts, the others wait for that count, which goes on when a caller stops
    /// waiting; a count that failed is tried again by the next caller. Once counted, no lock is taken.
    /// </summary>
    public Task CountedAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _counted) is { IsCompletedSuccessfully: true } ? Task.CompletedTask : WaitForCountAsync(cancellationToken);

    private async Task WaitForCountAsync(CancellationToken cancellationToken)
    {
        Task counted;
        lock (_gate)
        {
            if (_counted is null || _counted.IsFaulted || _counted.IsCanceled) _counted = RedisFaults.RunAsync(CountAsync, CancellationToken.None);
            counted = _counted;
        }
        try
        {
            await counted.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            throw new KvStoreUnavailableException("redis unavailable: the global usage counter is still being counted", ex);
        }
    }

    /// <summary>
    /// Creates the counter, when no replica has, as the sum of every namespace's bytes (a scan of
    /// each primary): a store whose global quota is set after it held data would otherwise count
    /// from zero, and could pass the quota by what it held. Set only if still missing, so replicas
    /// counting at once agree; writes wait for it, on every replica that keeps the quota. True when
    /// this count created it.
    /// </summary>
    private async Task<bool> CountAsync()
    {
        var multiplexer = await redis.MultiplexerAsync(CancellationToken.None);
        var database = multiplexer.GetDatabase();
        if (await database.KeyExistsAsync(keys.GlobalBytes)) return false;
        var started = System.Diagnostics.Stopwatch.StartNew();
        long bytes = 0, namespaces = 0;
        foreach (var server in multiplexer.GetServers().Where(server => !server.IsReplica))
        {
            if (!server.IsConnected)
                throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None,
                    $"{server.EndPoint} is not connected (the global usage counter is counted over every primary)", null, CommandStatus.Unknown);
            var page = new List<Task<RedisValue>>();
            await foreach (var meta in server.KeysAsync(pattern: keys.AllMetaPattern, pageSize: 1000))
            {
                page.Add(database.HashGetAsync(meta, "bytes"));
                namespaces++;
                if (page.Count == 1000) bytes += await TakeSumAsync(page);
            }
            bytes += await TakeSumAsync(page);
        }
        if (!await database.StringSetAsync(keys.GlobalBytes, bytes, when: When.NotExists)) return false;
        logger.LogInformation("The global usage counter starts at {Bytes} bytes, counted over {Namespaces} namespaces in {Seconds:0.0} s",
            bytes, namespaces, started.Elapsed.TotalSeconds);
        return true;
    }

    /// <summary>The sum of the page's counters, read side by side; empties the page.</summary>
    private static async Task<long> TakeSumAsync(List<Task<RedisValue>> page)
    {
        long sum = 0;
        foreach (var counter in page) sum += (long?)await counter ?? 0;
        page.Clear();
        return sum;
    }
}
