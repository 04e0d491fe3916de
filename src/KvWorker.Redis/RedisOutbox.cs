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
internal sealed class RedisOutbox(IDatabase database, RedisKeys keys, IKvEventPublisher events, ILogger logger)
{
    /// <summary>Longer than a broker takes to confirm a batch; a lapsed claim's events go out again.</summary>
    private static readonly long LeaseMicroseconds = (long)TimeSpan.FromSeconds(30).TotalMicroseconds;
    private const int BatchSize = 100;

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
        var namespaceKeys = keys.Namespace(ns);
        while (true)
        {
            var token = Guid.NewGuid().ToString("N");
            var claimed = (RedisResult[])(await RedisFaults.RunAsync(
                () => database.ScriptEvaluateAsync(RedisScripts.Claim, namespaceKeys, [ns, token, LeaseMicroseconds, BatchSize]), cancellationToken))!;
            if (claimed.Length == 0) return;
            try
            {
                foreach (var line in claimed) await events.PublishAsync(ToEvent(ns, (string)line!), cancellationToken);
            }
            catch
            {
                // Give the claim up at once, so the next attempt need not wait for its lease.
                await database.ScriptEvaluateAsync(RedisScripts.Ack, namespaceKeys, [ns, token, "0"]);
                throw;
            }
            var more = (long)await RedisFaults.RunAsync(
                () => database.ScriptEvaluateAsync(RedisScripts.Ack, namespaceKeys, [ns, token, "1"]), cancellationToken);
            if (more == 0) return;
        }
    }

    /// <summary>An event line as Scripts/namespace.lua and mutation.lua queue it: its kind, then its fields.</summary>
    private static object ToEvent(string ns, string line)
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
            _ => throw new InvalidOperationException($"the outbox of namespace '{ns}' holds an unknown event: {line}"),
        };
    }

    private static long Long(string text) => long.Parse(text, CultureInfo.InvariantCulture);

    /// <summary>Microseconds since the epoch on the Redis clock.</summary>
    private static DateTimeOffset Time(string microseconds) => DateTimeOffset.UnixEpoch.AddTicks(Long(microseconds) * 10);
}
