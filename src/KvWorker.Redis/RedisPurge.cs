using KvWorker.Contracts;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// Removes expired entries, namespace by namespace, in scripts of at most <c>purge_batch_size</c>
/// entries, each reporting what it removed as one KvEntriesExpired in the namespace's outbox, which
/// is then published. The namespaces with expired entries (or waiting events) are found in the
/// buckets' due indexes (<see cref="RedisKeys.Due"/>), which the scripts keep exact. Two purges
/// never remove or report an entry twice (each script is atomic); a lock keeps them from running
/// side by side at all.
/// </summary>
internal sealed class RedisPurge(RedisConnection redis, RedisKeys keys, int batchSize, RedisOutbox outbox, RedisGlobalQuota? global,
    RedisStepOnce counterSettled)
{
    /// <summary>Longer than a purge takes; a purge whose replica died holds the lock that long at most.</summary>
    private static readonly TimeSpan LockLease = TimeSpan.FromMinutes(5);

    /// <summary>Purges one namespace, or all of them; does nothing and says so while another purge of the store runs.</summary>
    public async Task<KvPurgeResult> RunAsync(string? ns, CancellationToken cancellationToken)
    {
        var database = await redis.DatabaseAsync(cancellationToken);
        var token = Guid.NewGuid().ToString("N");
        if (!await RedisFaults.RunAsync(() => database.LockTakeAsync(keys.PurgeLock, token, LockLease), cancellationToken))
            return new KvPurgeResult { Namespace = ns, Ran = false };
        try
        {
            // When the request's time budget runs out the run stops between scripts with what it removed
            // and says it is not complete, as PostgreSQL's does; the rest, and the events not yet published,
            // wait for the next run. It is not an error: a large backlog simply takes several runs.
            var purged = new List<KvEntriesExpired>();
            var complete = true;
            var at = DateTimeOffset.UtcNow;
            foreach (var name in ns is null ? await DueNamespacesAsync(cancellationToken) : [ns])
            {
                var (count, bytes, finished) = await PurgeNamespaceAsync(name, long.MaxValue, cancellationToken);
                if (count > 0) purged.Add(new KvEntriesExpired { Namespace = name, Count = count, BytesFreed = bytes, At = at });
                if (!finished)
                {
                    complete = false;
                    break;
                }
            }
            return new KvPurgeResult
            {
                Namespace = ns, Ran = true, Complete = complete,
                Entries = purged.Sum(p => p.Count), BytesFreed = purged.Sum(p => p.BytesFreed), Namespaces = purged,
            };
        }
        finally
        {
            // Redis lost meanwhile is unavailable like any command to it (the worker retries); the lock
            // then stays until its lease ends.
            await RedisFaults.RunAsync(() => database.LockReleaseAsync(keys.PurgeLock, token), CancellationToken.None);
        }
    }

    /// <summary>
    /// Removes expired entries of any namespace until <paramref name="needed"/> bytes are freed
    /// or none is left, for a write of <paramref name="key"/> in <paramref name="writtenNamespace"/>
    /// that the global quota would otherwise refuse. That key's expired entry stays: the write
    /// replaces it, and an expired entry that is overwritten is not reported expired.
    /// </summary>
    public async Task ReclaimAsync(long needed, string writtenNamespace, string key, CancellationToken cancellationToken)
    {
        long freed = 0;
        foreach (var ns in await DueNamespacesAsync(cancellationToken))
        {
            freed += (await PurgeNamespaceAsync(ns, needed - freed, cancellationToken, ns == writtenNamespace ? key : null)).Bytes;
            if (freed >= needed) return;
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// Batches on one namespace until none is left or <paramref name="enough"/> bytes are freed, then its
    /// events go out; stops between batches when <paramref name="cancellationToken"/> is cancelled, not finished.
    /// </summary>
    private async Task<(long Count, long Bytes, bool Finished)> PurgeNamespaceAsync(
        string ns, long enough, CancellationToken cancellationToken, string? exceptKey = null)
    {
        var database = await redis.DatabaseAsync(cancellationToken);
        await counterSettled.DoneAsync(cancellationToken);
        var namespaceKeys = keys.Namespace(ns);
        long count = 0, bytes = 0;
        while (bytes < enough && !cancellationToken.IsCancellationRequested)
        {
            var reply = (RedisResult[])(await RedisFaults.RunToReplyAsync(
                () => database.ScriptEvaluateAsync(RedisScripts.Purge, namespaceKeys, [ns, batchSize, exceptKey ?? ""]), cancellationToken))!;
            var (removed, freed) = ((long)reply[0], (long)reply[1]);
            (count, bytes) = (count + removed, bytes + freed);
            if (global is not null) await global.SettleAsync(-freed);
            if (removed < batchSize) break;
        }
        if (cancellationToken.IsCancellationRequested) return (count, bytes, false);
        await outbox.PublishAsync(ns, cancellationToken);
        return (count, bytes, true);
    }

    /// <summary>Every bucket's due namespaces, read side by side.</summary>
    private async Task<IEnumerable<string>> DueNamespacesAsync(CancellationToken cancellationToken)
    {
        var database = await redis.DatabaseAsync(cancellationToken);
        var buckets = await RedisFaults.RunAsync(() => Task.WhenAll(Enumerable.Range(0, RedisKeys.Buckets).Select(bucket =>
            database.ScriptEvaluateReadOnlyAsync(RedisScripts.Due, [keys.Due(bucket)]))), cancellationToken);
        return buckets.SelectMany(due => (RedisResult[])due!).Select(ns => (string)ns!);
    }
}
