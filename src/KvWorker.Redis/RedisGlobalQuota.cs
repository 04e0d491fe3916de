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
/// counter: it is counted from what the namespaces hold before the first change (<see cref="Counted"/>);
/// a replica without the quota deletes it before its own first change (<see cref="Forgotten"/>).
/// </summary>
internal sealed class RedisGlobalQuota
{
    private readonly RedisConnection _redis;
    private readonly RedisKeys _keys;
    private readonly long _quotaBytes;
    private readonly ILogger _logger;

    public RedisGlobalQuota(RedisConnection redis, RedisKeys keys, long quotaBytes, ILogger logger)
    {
        (_redis, _keys, _quotaBytes, _logger) = (redis, keys, quotaBytes, logger);
        Counted = new RedisStepOnce(CountAsync, "the global usage counter is still being counted");
    }

    public long QuotaBytes => _quotaBytes;

    /// <summary>Adds <paramref name="bytes"/> to the counter when they fit under the quota; the bytes used after, or before a refusal.</summary>
    public async Task<(bool Granted, long UsedBytes)> TryReserveAsync(long bytes, CancellationToken cancellationToken)
    {
        var database = await _redis.DatabaseAsync(cancellationToken);
        var reply = (RedisResult[])(await RedisFaults.RunToReplyAsync(
            () => database.ScriptEvaluateAsync(RedisScripts.Reserve, [_keys.GlobalBytes], [bytes, _quotaBytes]), cancellationToken))!;
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
            var database = await _redis.DatabaseAsync(CancellationToken.None);
            await database.StringIncrementAsync(_keys.GlobalBytes, bytes);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            _logger.LogWarning("The global usage counter stays {Bytes} bytes too high: {Message}", -bytes, ex.Message);
        }
    }

    /// <summary>
    /// Done once the counter exists. Every script that changes a namespace's bytes waits for this
    /// first, since the count must not include a change that is then added or taken off again.
    /// </summary>
    public RedisStepOnce Counted { get; }

    /// <summary>
    /// Creates the counter, when no replica has, as the sum of every namespace's bytes (a scan of
    /// each primary): a store whose global quota is set after it held data would otherwise count
    /// from zero, and could pass the quota by what it held. Set only if still missing, so replicas
    /// counting at once agree; writes wait for it, on every replica that keeps the quota.
    /// </summary>
    private async Task CountAsync()
    {
        var multiplexer = await _redis.MultiplexerAsync(CancellationToken.None);
        var database = multiplexer.GetDatabase();
        if (await database.KeyExistsAsync(_keys.GlobalBytes)) return;
        var started = System.Diagnostics.Stopwatch.StartNew();
        long bytes = 0, namespaces = 0;
        foreach (var server in multiplexer.GetServers().Where(server => !server.IsReplica))
        {
            if (!server.IsConnected)
                throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None,
                    $"{server.EndPoint} is not connected (the global usage counter is counted over every primary)", null, CommandStatus.Unknown);
            var page = new List<Task<RedisValue>>();
            await foreach (var meta in server.KeysAsync(pattern: _keys.AllMetaPattern, pageSize: 1000))
            {
                page.Add(database.HashGetAsync(meta, "bytes"));
                namespaces++;
                if (page.Count == 1000) bytes += await TakeSumAsync(page);
            }
            bytes += await TakeSumAsync(page);
        }
        if (!await database.StringSetAsync(_keys.GlobalBytes, bytes, when: When.NotExists)) return;
        _logger.LogInformation("The global usage counter starts at {Bytes} bytes, counted over {Namespaces} namespaces in {Seconds:0.0} s",
            bytes, namespaces, started.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// What a replica without the global quota does before its first change: deletes the counter,
    /// which its changes would leave behind what the namespaces hold, so that a replica that keeps
    /// the quota later counts it afresh rather than starting from a figure that missed them.
    /// </summary>
    public static RedisStepOnce Forgotten(RedisConnection redis, RedisKeys keys, ILogger logger) =>
        new(async () =>
        {
            var database = await redis.DatabaseAsync(CancellationToken.None);
            if (await database.KeyDeleteAsync(keys.GlobalBytes))
                logger.LogInformation("Deleted the global usage counter {Key}: no global quota is set, so changes are not counted on it",
                    keys.GlobalBytes.ToString());
        }, "the global usage counter is being deleted");

    /// <summary>The sum of the page's counters, read side by side; empties the page.</summary>
    private static async Task<long> TakeSumAsync(List<Task<RedisValue>> page)
    {
        long sum = 0;
        foreach (var counter in page) sum += (long?)await counter ?? 0;
        page.Clear();
        return sum;
    }
}
