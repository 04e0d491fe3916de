using System.Globalization;
using System.Text;
using KvWorker.Contracts;
using KvWorker.Storage;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// The <c>redis</c> provider, on a standalone Redis or a Redis Cluster. Every operation on a
/// namespace is one Lua script (Scripts/*.lua) that Redis runs atomically on the namespace's
/// keys, which share one slot (<see cref="RedisKeys"/>): values are kept as their exact compact
/// JSON text, TTLs on the Redis server's clock, increments on decimal strings, and the usage
/// counter, version, quota check, request record and events change in the same script as the
/// entry. The global quota spans slots: <see cref="RedisGlobalQuota"/>.
/// </summary>
public sealed class RedisKvStoreAdapter : IKvStoreAdapter, IAsyncDisposable
{
    /// <summary>A script's answer when the write needs more bytes granted on the global counter.</summary>
    private const string GlobalNeeded = "global_needed";

    /// <summary>A script's answer when it removed as many expired entries as one script may, and the write may need more room.</summary>
    private const string ReclaimMore = "reclaim_more";

    private readonly RedisConnection _redis;
    private readonly RedisAdapterOptions _options;
    private readonly int _maxIntegerDigits;
    private readonly RedisKeys _keys;
    private readonly string _thresholds;
    private readonly RedisOutbox _outbox;
    private readonly RedisGlobalQuota? _global;
    /// <summary>Waited for before this replica's first change: the global counter counted under a global quota, deleted without one.</summary>
    private readonly RedisStepOnce _counterSettled;
    private readonly RedisPurge _purge;
    private readonly long _retentionMilliseconds;

    private RedisKvStoreAdapter(
        RedisConnection redis, RedisAdapterOptions options, int maxIntegerDigits, IKvEventPublisher events, ILogger logger)
    {
        _redis = redis;
        _options = options;
        _maxIntegerDigits = maxIntegerDigits;
        _keys = new RedisKeys(options.KeyPrefix);
        _thresholds = string.Join(' ', options.EffectiveQuotaThresholds.Select(t => t.ToString("R", CultureInfo.InvariantCulture)));
        _outbox = new RedisOutbox(redis, _keys, events, logger);
        _global = options.GlobalQuotaBytes is { } quota ? new RedisGlobalQuota(redis, _keys, quota, logger) : null;
        _counterSettled = _global?.Counted ?? RedisGlobalQuota.Forgotten(redis, _keys, logger);
        _purge = new RedisPurge(redis, _keys, options.PurgeBatchSize, _outbox, _global, _counterSettled);
        _retentionMilliseconds = (long)Math.Ceiling(options.RequestRetentionSeconds * 1000);
    }

    /// <summary>
    /// Starts connecting to <see cref="RedisAdapterOptions.Url"/> (one server, or any nodes of a
    /// cluster) and returns at once; the adapter owns the connection (<see cref="RedisConnection"/>).
    /// A server that is down does not fail this call: operations fail (and are retried) until it is back.
    /// </summary>
    public static RedisKvStoreAdapter Connect(RedisAdapterOptions options, int maxIntegerDigits, IKvEventPublisher events, ILogger logger)
    {
        var configuration = ConfigurationOptions.Parse(options.Url ?? throw new InvalidOperationException($"{RedisAdapterOptions.Section}:url is required"));
        configuration.AbortOnConnectFail = false;
        // A command sent while the connection is down fails at once and the worker retries it within
        // the request's budget, rather than waiting in the client's backlog to run after the caller
        // has been told the store was unavailable.
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        return new RedisKvStoreAdapter(new RedisConnection(configuration), options, maxIntegerDigits, events, logger);
    }

    public async Task<KvGetResult> GetAsync(KvGet request, CancellationToken cancellationToken) =>
        (await ReadAsync(request.Namespace, [request.Key], cancellationToken))[0];

    public async Task<KvGetManyResult> GetManyAsync(KvGetMany request, CancellationToken cancellationToken) =>
        new() { Namespace = request.Namespace, Entries = await ReadAsync(request.Namespace, request.Keys, cancellationToken) };

    public async Task<KvSetResult> SetAsync(KvSet request, StoredValue value, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var reply = await MutateAsync(RedisScripts.Set, request.Namespace, request.Key, identity, request.IfVersion,
            [value.Json, Microseconds(request.TtlSeconds), TtlText(request.TtlSeconds)], cancellationToken);
        return new KvSetResult
        {
            Namespace = request.Namespace, Key = request.Key, Value = StoredValue.Parse(value.Json), TtlSeconds = request.TtlSeconds,
            Version = reply.Version,
        };
    }

    public async Task<KvDeleteResult> DeleteAsync(KvDelete request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var reply = await MutateAsync(RedisScripts.Delete, request.Namespace, request.Key, identity, request.IfVersion, [], cancellationToken);
        return new KvDeleteResult { Namespace = request.Namespace, Key = request.Key, Deleted = reply.A == "1" };
    }

    public async Task<KvIncrementResult> IncrementAsync(KvIncrement request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var reply = await MutateAsync(RedisScripts.Increment, request.Namespace, request.Key, identity, null,
            [request.Delta.ToString(CultureInfo.InvariantCulture), request.InitialValue.ToString(CultureInfo.InvariantCulture),
             Microseconds(request.TtlSeconds), _maxIntegerDigits.ToString(CultureInfo.InvariantCulture)],
            cancellationToken);
        return new KvIncrementResult
        {
            Namespace = request.Namespace, Key = request.Key, Value = StoredValue.Parse(reply.A), TtlSeconds = Seconds(reply.B), Version = reply.Version,
        };
    }

    public async Task<KvTouchResult> TouchAsync(KvTouch request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var reply = await MutateAsync(RedisScripts.Touch, request.Namespace, request.Key, identity, null,
            [Microseconds(request.TtlSeconds), TtlText(request.TtlSeconds)], cancellationToken);
        var found = reply.A == "1";
        return new KvTouchResult
        {
            Namespace = request.Namespace, Key = request.Key, Found = found,
            TtlSeconds = found && reply.B != "" ? double.Parse(reply.B, CultureInfo.InvariantCulture) : null,
            Version = found ? reply.Version : null,
        };
    }

    public async Task<KvListResult> ListAsync(KvList request, CancellationToken cancellationToken)
    {
        var ns = request.Namespace;
        var limit = request.Limit ?? ListCursor.DefaultLimit;
        var prefix = Encoding.UTF8.GetBytes(request.Prefix ?? "");
        var after = request.Cursor is null ? null : Encoding.UTF8.GetBytes(ListCursor.Decode(request.Cursor));
        var database = await _redis.DatabaseAsync(cancellationToken);
        var page = (RedisResult[])(await RedisFaults.RunAsync(() => database.ScriptEvaluateReadOnlyAsync(RedisScripts.List, _keys.Namespace(ns),
            [ns, LowestKey(prefix, after), PrefixBound(prefix), limit]), cancellationToken))!;
        var keys = new List<KvListedKey>();
        for (var i = 1; i < page.Length; i += 4)
            keys.Add(new KvListedKey
            {
                Key = (string)page[i]!, SizeBytes = (long)page[i + 1], Version = (long)page[i + 2], TtlSeconds = Seconds((string?)page[i + 3]),
            });
        var next = (string?)page[0];
        return new KvListResult { Namespace = ns, Keys = keys, NextCursor = string.IsNullOrEmpty(next) ? null : ListCursor.Encode(next) };
    }

    public async Task<KvUsageResult> UsageAsync(KvUsage request, CancellationToken cancellationToken)
    {
        var ns = request.Namespace!;
        var database = await _redis.DatabaseAsync(cancellationToken);
        var usage = await RedisFaults.RunAsync(() => database.HashGetAsync(_keys.Meta(ns), ["bytes", "entries"]), cancellationToken);
        return new KvUsageResult
        {
            Namespace = ns,
            UsedBytes = usage[0].IsNull ? 0 : (long)usage[0],
            Entries = usage[1].IsNull ? 0 : (long)usage[1],
            QuotaBytes = _options.NamespaceQuotaBytes,
            GlobalQuotaBytes = _options.GlobalQuotaBytes,
        };
    }

    /// <summary>
    /// Removes expired entries (<see cref="RedisPurge"/>) and publishes what waits in the outboxes.
    /// Request identities need no purge: their records expire in Redis after the retention.
    /// </summary>
    public Task<KvPurgeResult> PurgeExpiredAsync(PurgeExpiredEntries request, CancellationToken cancellationToken) =>
        _purge.RunAsync(request.Namespace, cancellationToken);

    /// <summary>
    /// Every primary answers a PING: a cluster's namespaces are spread over all of them. A server
    /// that is down fails this with <see cref="KvStoreUnavailableException"/>, as it fails operations.
    /// </summary>
    public async Task PingAsync(CancellationToken cancellationToken)
    {
        var redis = await _redis.MultiplexerAsync(cancellationToken);
        foreach (var server in redis.GetServers().Where(server => !server.IsReplica))
            await RedisFaults.RunAsync(() => server.PingAsync(), cancellationToken);
    }

    public async ValueTask DisposeAsync() => await _redis.DisposeAsync();

    private async Task<List<KvGetResult>> ReadAsync(string ns, IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        var database = await _redis.DatabaseAsync(cancellationToken);
        var found = (RedisResult[])(await RedisFaults.RunAsync(() => database.ScriptEvaluateReadOnlyAsync(RedisScripts.Get, _keys.Namespace(ns),
            [ns, .. keys.Select(key => (RedisValue)key)]), cancellationToken))!;
        return [.. keys.Select((key, i) => (RedisResult[])found[i]! is [var value, var version, var remaining]
            ? new KvGetResult
            {
                Namespace = ns, Key = key, Found = true, Value = StoredValue.Parse((string)value!), Version = (long)version,
                TtlSeconds = Seconds((string?)remaining),
            }
            : new KvGetResult { Namespace = ns, Key = key, Found = false })];
    }

    /// <summary>
    /// Runs a mutation, first binding its message_id to it across namespaces: a namespace's script
    /// sees only its own slot, so the record it keeps cannot refuse a message_id used in another
    /// namespace. A refused request releases the binding, as refused requests are not recorded (a
    /// retry of one that was applied is answered from its record, never refused); the binding of a
    /// request whose outcome is unknown (the store failed) stays, so only its retry may use the
    /// message_id until the binding expires with the record.
    /// </summary>
    private async Task<MutationReply> MutateAsync(
        string script, string ns, string key, RequestIdentity? identity, long? ifVersion, RedisValue[] arguments, CancellationToken cancellationToken)
    {
        var database = await _redis.DatabaseAsync(cancellationToken);
        if (identity is null) return await RunMutationAsync(database, script, ns, key, identity, ifVersion, arguments, cancellationToken);
        var binding = _keys.Binding(identity.MessageId);
        RedisValue request = $"{identity.Operation} {identity.RequestHash}";
        var bound = await RedisFaults.RunAsync(
            () => database.ScriptEvaluateAsync(RedisScripts.Bind, [binding], [request, _retentionMilliseconds]), cancellationToken);
        if (!bound.IsNull && (string?)bound != request) throw KvStoreException.IdentityReused(identity.MessageId);
        try
        {
            return await RunMutationAsync(database, script, ns, key, identity, ifVersion, arguments, cancellationToken);
        }
        catch (KvStoreException)
        {
            await RedisFaults.RunAsync(() => database.ScriptEvaluateAsync(RedisScripts.Unbind, [binding], [request]), CancellationToken.None);
            throw;
        }
    }

    /// <summary>
    /// Runs a mutation script and returns its answer, or throws the error a refusal answers with.
    /// Under a global quota, a script that would grow its namespace answers global_needed until
    /// the bytes are granted on the global counter; then it runs again (this ends: it asks again
    /// only when a concurrent write of the same key grew it in between). A script that removed as
    /// many expired entries as one may (reclaim_more) runs again too: each run removes more.
    /// </summary>
    private async Task<MutationReply> RunMutationAsync(IDatabase database,
        string script, string ns, string key, RequestIdentity? identity, long? ifVersion, RedisValue[] arguments, CancellationToken cancellationToken)
    {
        RedisKey[] keys = _keys.Namespace(ns);
        if (identity is not null) keys = [.. keys, _keys.Request(ns, identity.MessageId)];
        await _counterSettled.DoneAsync(cancellationToken);
        long granted = 0;
        while (true)
        {
            if (granted > 0 && cancellationToken.IsCancellationRequested)
            {
                // The script the bytes were granted for will not be sent: give them back.
                await _global!.SettleAsync(-granted);
                cancellationToken.ThrowIfCancellationRequested();
            }
            RedisValue[] values =
            [
                ns, key, _options.NamespaceQuotaBytes, _global is null ? "" : granted, _thresholds,
                _retentionMilliseconds, identity?.RequestHash ?? "",
                ifVersion?.ToString(CultureInfo.InvariantCulture) ?? "", .. arguments,
            ];
            // With bytes granted, the check above decided: the script goes out whatever the token says
            // from here on, so its reply settles them (a cancellation now would strand them).
            var reply = new MutationReply((RedisResult[])(await RedisFaults.RunToReplyAsync(
                () => database.ScriptEvaluateAsync(script, keys, values), granted > 0 ? CancellationToken.None : cancellationToken))!);
            if (_global is not null) await _global.SettleAsync(reply.Net - granted);
            if (reply.Queued) await _outbox.PublishAsync(ns, cancellationToken);
            if (reply.Status == ReclaimMore)
            {
                granted = 0; // given back with the settle above
                cancellationToken.ThrowIfCancellationRequested();
                continue;
            }
            if (reply.Status != GlobalNeeded)
            {
                Outcome(reply).ThrowIfRefused(ns, key, reply.Status == KvStatus.NamespaceQuota ? reply.Long(2) : 0, identity, _maxIntegerDigits, ifVersion);
                return reply;
            }
            var global = _global ?? throw new InvalidOperationException("a script asked for global bytes without a global quota");
            var (needed, size, replacedExpired) = (reply.Long(0), reply.Long(1), reply.Long(2));
            var (ok, used) = await ReserveGlobalAsync(global, needed, ns, key, cancellationToken);
            // The expired entry the write would replace is still on the counter, but is not live usage.
            if (!ok) throw QuotaExceededException.Global(global.QuotaBytes, used - replacedExpired, size);
            granted = needed;
        }
    }

    /// <summary>
    /// Grants bytes on the global counter; expired entries never cause a refusal, so they are removed
    /// first when they would. Also before refusing bytes that could never fit: the refusal's figures are
    /// the live bytes, as in every other refusal, not the counter with expired entries still on it.
    /// </summary>
    private async Task<(bool Granted, long UsedBytes)> ReserveGlobalAsync(
        RedisGlobalQuota global, long bytes, string ns, string key, CancellationToken cancellationToken)
    {
        var (granted, used) = await global.TryReserveAsync(bytes, cancellationToken);
        if (granted) return (granted, used);
        await _purge.ReclaimAsync(used + bytes - global.QuotaBytes, ns, key, cancellationToken);
        return await global.TryReserveAsync(bytes, cancellationToken);
    }

    /// <summary>A mutation's verdict, with the figures of the quota that refused it or the live version that did not match.</summary>
    private static KvOutcome Outcome(MutationReply reply) => reply.Status switch
    {
        KvStatus.NamespaceQuota => new KvOutcome(reply.Status, UsedBytes: reply.Long(0), QuotaBytes: reply.Long(1)),
        KvStatus.VersionConflict => new KvOutcome(reply.Status, CurrentVersion: reply.Text(0) is "" ? null : reply.Long(0)),
        _ => new KvOutcome(reply.Status),
    };

    /// <summary>
    /// ZRANGEBYLEX's lower bound for a page: after the cursor's key when it is past the
    /// prefix's start, else from the prefix on (UTF-8 bytes compare as keys sort).
    /// </summary>
    private static RedisValue LowestKey(byte[] prefix, byte[]? after) =>
        after is not null && after.AsSpan().SequenceCompareTo(prefix) >= 0 ? (byte[])[(byte)'(', .. after]
        : prefix.Length > 0 ? (byte[])[(byte)'[', .. prefix]
        : "-";

    /// <summary>
    /// ZRANGEBYLEX's bound past every key that starts with the prefix: the prefix with its last
    /// byte raised by one (never 0xFF in UTF-8), or '+' for no prefix.
    /// </summary>
    private static RedisValue PrefixBound(byte[] prefix) =>
        prefix.Length == 0 ? "+" : (byte[])[(byte)'(', .. prefix[..^1], (byte)(prefix[^1] + 1)];

    private static RedisValue Microseconds(double? seconds) =>
        seconds is { } s ? Math.Max(1L, (long)Math.Round(s * 1_000_000)) : "";

    /// <summary>A TTL as the request gave it, which replays answer with.</summary>
    private static string TtlText(double? seconds) => seconds?.ToString("R", CultureInfo.InvariantCulture) ?? "";

    private static double? Seconds(string? microseconds) =>
        string.IsNullOrEmpty(microseconds) ? null : long.Parse(microseconds, CultureInfo.InvariantCulture) / 1_000_000.0;

    /// <summary>
    /// A mutation script's answer (Scripts/mutation.lua): status, the namespace's byte change,
    /// whether events were queued, then the status's fields; for an applied or replayed mutation
    /// the version and two operation-specific fields, A and B.
    /// </summary>
    private readonly record struct MutationReply(RedisResult[] Fields)
    {
        public string Status => (string)Fields[0]!;
        public long Net => (long)Fields[1];
        public bool Queued => (long)Fields[2] == 1;
        public long Version => Long(0);
        public string A => Text(1);
        public string B => Text(2);

        public string Text(int field) => (string?)Fields[3 + field] ?? "";
        public long Long(int field) => (long)Fields[3 + field];
    }
}
