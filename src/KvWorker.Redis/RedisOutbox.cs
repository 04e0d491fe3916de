using System.Globalization;
using KvWorker.Contracts;
using KvWorker.Storage;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// Publishes the events that scripts queued in a namespace's outbox list in the same script as
/// their change, so an event exists if and only if its change was made. A replica claims the
/// waiting events (one claim per namespace at a time), publishes them, then acknowledges them,
/// which removes them; a claim not acknowledged within its lease is taken over and published
/// again. So each event goes out once, and again only after a failure: at least once.
/// Events that cannot be published now stay waiting, and their namespace stays due, so the
/// next purge publishes them.
/// </summary>
internal sealed class RedisOutbox(RedisConnection redis, RedisKeys keys, IKvEventPublisher events, ILogger logger)
{
    /// <summary>Longer than a broker takes to confirm a batch; a lapsed claim's events go out again.</summary>
    private static readonly long LeaseMicroseconds = (long)TimeSpan.FromSeconds(30).TotalMicroseconds;
    private const int BatchSize = 100;

    /// <summary>Event lines of unknown kinds this replica has logged (each once, though it meets them at every purge).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _reportedLines = new();

    /// <summary>
    /// Publishes the namespace's waiting events, until none wait or another replica holds the
    /// claim. Never throws: the change that queued them is made whether or not they go out now.
    /// </summary>
    public async Task PublishAsync(string ns, CancellationToken cancellationToken)
    {
        try
        {
            await PublishWaitingAsync(ns, cancellationToken);
        }
        catch (Exception ex)
        {
            logger.LogWarning("Events of namespace {Namespace} wait for the next purge: {Message}", ns, ex.Message);
        }
    }

    private async Task PublishWaitingAsync(string ns, CancellationToken cancellationToken)
    {
        var database = await redis.DatabaseAsync(cancellationToken);
        var namespaceKeys = keys.Namespace(ns);
        while (true)
        {
            var token = Guid.NewGuid().ToString("N");
            var claimed = (RedisResult[])(await RedisFaults.RunAsync(
                () => database.ScriptEvaluateAsync(RedisScripts.Claim, namespaceKeys, [ns, token, LeaseMicroseconds, BatchSize]), cancellationToken))!;
            if (claimed.Length == 0) return;
            var known = new List<object>();
            var unknown = new List<RedisValue>();
            foreach (var line in claimed)
            {
                if (ToEvent(ns, (string)line!) is { } @event) known.Add(@event);
                else unknown.Add((RedisValue)line);
            }
            try
            {
                foreach (var @event in known) await events.PublishAsync(@event, cancellationToken);
            }
            catch
            {
                // Give the claim up at once, so the next attempt need not wait for its lease.
                await database.ScriptEvaluateAsync(RedisScripts.Ack, namespaceKeys, [ns, token, "0"]);
                throw;
            }
            foreach (var line in unknown)
                if (_reportedLines.TryAdd(ns + "\n" + line, 0))
                    logger.LogWarning("Namespace {Namespace}'s outbox holds an event this replica does not know, left for a replica that does: {Line}", ns, line);
            // The events published leave the outbox; those of kinds unknown here go back to its head, in order.
            var more = (long)await RedisFaults.RunAsync(
                () => database.ScriptEvaluateAsync(RedisScripts.Ack, namespaceKeys, [ns, token, "1", .. unknown]), cancellationToken);
            // A batch of unknown events only would come back at once: they wait for the next purge.
            if (more == 0 || known.Count == 0) return;
        }
    }

    /// <summary>
    /// An event line as Scripts/namespace.lua and mutation.lua queue it: its kind, then its fields;
    /// null for a kind this replica does not know (queued by a newer one, during an upgrade).
    /// </summary>
    private static object? ToEvent(string ns, string line)
    {
        var fields = line.Split(' ');
        return fields[0] switch
        {
            "expired" => new KvEntriesExpired { Namespace = ns, Count = Long(fields[1]), BytesFreed = Long(fields[2]), At = Time(fields[3]) },
            "threshold" => new NamespaceQuotaThresholdReached
            {
                Namespace = ns, Threshold = double.Parse(fields[1], CultureInfo.InvariantCulture),
                UsedBytes = Long(fields[2]), QuotaBytes = Long(fields[3]), At = Time(fields[4]),
            },
            _ => null,
        };
    }

    private static long Long(string text) => long.Parse(text, CultureInfo.InvariantCulture);

    /// <summary>Microseconds since the epoch on the Redis clock.</summary>
    private static DateTimeOffset Time(string microseconds) => DateTimeOffset.UnixEpoch.AddTicks(Long(microseconds) * 10);
}
