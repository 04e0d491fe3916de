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
/// rejecting), never too low.
/// </summary>
internal sealed class RedisGlobalQuota(RedisConnection redis, RedisKeys keys, long quotaBytes, ILogger logger)
{
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
}
