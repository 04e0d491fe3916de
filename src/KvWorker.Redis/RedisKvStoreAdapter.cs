using System.Globalization;
using System.Reflection;
using KvWorker.Contracts;
using KvWorker.Storage;
using StackExchange.Redis;

namespace KvWorker.Redis;

/// <summary>
/// The <c>redis</c> provider. Every operation is one Lua script (Scripts/*.lua)
/// that Redis runs atomically: values are kept as their exact compact JSON
/// text, TTLs on the Redis server's clock, increments on decimal strings, and
/// the usage counters, quota checks and request records change in the same
/// script as the entry. Runs on a standalone Redis (or one shard): a script
/// may touch every namespace's keys when it reclaims expired entries.
/// </summary>
public sealed class RedisKvStoreAdapter : IKvStoreAdapter, IAsyncDisposable
{
    private static readonly string GetScript = Script("get.lua");
    private static readonly string SetScript = Script("mutation.lua") + Script("set.lua");
    private static readonly string DeleteScript = Script("mutation.lua") + Script("delete.lua");
    private static readonly string IncrementScript = Script("mutation.lua") + Script("increment.lua");

    private readonly IConnectionMultiplexer _redis;
    private readonly bool _ownsConnection;
    private readonly RedisAdapterOptions _options;
    private readonly int _maxIntegerDigits;

    /// <summary>An adapter on a connection the caller owns (and disposes).</summary>
    public RedisKvStoreAdapter(IConnectionMultiplexer redis, RedisAdapterOptions options, int maxIntegerDigits)
        : this(redis, ownsConnection: false, options, maxIntegerDigits)
    {
    }

    private RedisKvStoreAdapter(IConnectionMultiplexer redis, bool ownsConnection, RedisAdapterOptions options, int maxIntegerDigits)
    {
        _redis = redis;
        _ownsConnection = ownsConnection;
        _options = options;
        _maxIntegerDigits = maxIntegerDigits;
    }

    /// <summary>
    /// Connects to <see cref="RedisAdapterOptions.Url"/>; the adapter owns the
    /// connection. A server that is down does not fail this call: operations
    /// fail (and are retried) until it is back.
    /// </summary>
    public static RedisKvStoreAdapter Connect(RedisAdapterOptions options, int maxIntegerDigits)
    {
        var configuration = ConfigurationOptions.Parse(options.Url ?? throw new InvalidOperationException($"{RedisAdapterOptions.Section}:url is required"));
        configuration.AbortOnConnectFail = false;
        return new RedisKvStoreAdapter(ConnectionMultiplexer.Connect(configuration), ownsConnection: true, options, maxIntegerDigits);
    }

    private IDatabase Database => _redis.GetDatabase();
    private string Prefix => _options.KeyPrefix;
    private long? GlobalQuota => _options.GlobalQuotaBytes;

    public async Task<KvGetResult> GetAsync(KvGet request, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        var result = await RunAsync(
            () => Database.ScriptEvaluateReadOnlyAsync(GetScript, [ValuesKey(ns), ExpiryKey(ns)], [key]), cancellationToken);
        if (result.IsNull)
            return new KvGetResult { Namespace = ns, Key = key, Found = false };
        var reply = (RedisResult[])result!;
        return new KvGetResult
        {
            Namespace = ns,
            Key = key,
            Found = true,
            Value = StoredValue.Parse((string)reply[0]!),
            TtlSeconds = reply.Length > 1 ? Seconds((string?)reply[1]) : null,
        };
    }

    public async Task<KvSetResult> SetAsync(KvSet request, StoredValue value, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        QuotaExceededException.ThrowIfLargerThanQuota(ns, value.SizeBytes, _options.NamespaceQuotaBytes, GlobalQuota);
        var ttlText = request.TtlSeconds?.ToString("R", CultureInfo.InvariantCulture) ?? "";
        var reply = await MutateAsync(SetScript, ns, key, identity, [value.Json, Microseconds(request.TtlSeconds), ttlText], cancellationToken);
        Outcome(reply).ThrowIfRefused(ns, key, value.SizeBytes, identity, _maxIntegerDigits);
        return new KvSetResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = request.TtlSeconds };
    }

    public async Task<KvDeleteResult> DeleteAsync(KvDelete request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        var reply = await MutateAsync(DeleteScript, ns, key, identity, [], cancellationToken);
        Outcome(reply).ThrowIfRefused(ns, key, 0, identity, _maxIntegerDigits);
        return new KvDeleteResult { Namespace = ns, Key = key, Deleted = (string?)reply[1] == "1" };
    }

    public async Task<KvIncrementResult> IncrementAsync(KvIncrement request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        var reply = await MutateAsync(IncrementScript, ns, key, identity,
            [request.Delta.ToString(CultureInfo.InvariantCulture), request.InitialValue.ToString(CultureInfo.InvariantCulture),
             Microseconds(request.TtlSeconds), _maxIntegerDigits.ToString(CultureInfo.InvariantCulture)],
            cancellationToken);
        Outcome(reply).ThrowIfRefused(ns, key, reply.Length > 3 ? (long)reply[3] : 0, identity, _maxIntegerDigits);
        return new KvIncrementResult
        {
            Namespace = ns,
            Key = key,
            Value = StoredValue.Parse((string)reply[1]!),
            TtlSeconds = Seconds((string?)reply[2]),
        };
    }

    public Task<KvListResult> ListAsync(KvList request, CancellationToken cancellationToken) =>
        throw new NotImplementedException("kv_list on Redis");

    public Task<KvTouchResult> TouchAsync(KvTouch request, RequestIdentity? identity, CancellationToken cancellationToken) =>
        throw new NotImplementedException("kv_touch on Redis");

    public Task<KvGetManyResult> GetManyAsync(KvGetMany request, CancellationToken cancellationToken) =>
        throw new NotImplementedException("kv_get_many on Redis");

    public async Task<KvUsageResult> UsageAsync(KvUsage request, CancellationToken cancellationToken)
    {
        var ns = request.Namespace!;
        var usage = await RunAsync(() => Database.HashGetAsync(UsageKey(ns), ["bytes", "entries"]), cancellationToken);
        return new KvUsageResult
        {
            Namespace = ns,
            UsedBytes = usage[0].IsNull ? 0 : (long)usage[0],
            Entries = usage[1].IsNull ? 0 : (long)usage[1],
            QuotaBytes = _options.NamespaceQuotaBytes,
            GlobalQuotaBytes = GlobalQuota,
        };
    }

    /// <summary>
    /// Expired entries are removed as writes pass by (the reclaim and sweep of
    /// Scripts/mutation.lua), not by the purge command, which finds nothing to do here.
    /// </summary>
    public Task<KvPurgeResult> PurgeExpiredAsync(PurgeExpiredEntries request, CancellationToken cancellationToken) =>
        Task.FromResult(new KvPurgeResult { Namespace = request.Namespace, Ran = true });

    public async ValueTask DisposeAsync()
    {
        if (_ownsConnection) await _redis.DisposeAsync();
    }

    private RedisKey ValuesKey(string ns) => Prefix + "v:" + ns;
    private RedisKey ExpiryKey(string ns) => Prefix + "x:" + ns;
    private RedisKey UsageKey(string ns) => Prefix + "u:" + ns;

    /// <summary>
    /// A request identity's record is scoped to its namespace; the length makes
    /// the name unambiguous whatever characters the parts hold.
    /// </summary>
    private RedisKey RequestKey(string ns, string messageId) => $"{Prefix}r:{ns.Length}:{ns}{messageId}";

    private async Task<RedisResult[]> MutateAsync(
        string script, string ns, string key, RequestIdentity? identity, RedisValue[] arguments, CancellationToken cancellationToken)
    {
        RedisKey[] keys = [ValuesKey(ns), ExpiryKey(ns), UsageKey(ns), Prefix + "g", Prefix + "gx"];
        if (identity is not null) keys = [.. keys, RequestKey(ns, identity.MessageId)];
        RedisValue[] values =
        [
            Prefix, ns, key,
            _options.NamespaceQuotaBytes,
            GlobalQuota is { } global ? global : "",
            (long)Math.Ceiling(_options.RequestRetentionSeconds * 1000),
            identity?.RequestHash ?? "",
            .. arguments,
        ];
        var result = await RunAsync(() => Database.ScriptEvaluateAsync(script, keys, values), cancellationToken);
        return (RedisResult[])result!;
    }

    /// <summary>A script's verdict: its status, and for a quota rejection the figures (used, quota, size).</summary>
    private static KvOutcome Outcome(RedisResult[] reply) => (string?)reply[0] is KvStatus.NamespaceQuota or KvStatus.GlobalQuota
        ? new KvOutcome((string)reply[0]!, (long)reply[1], (long)reply[2])
        : new KvOutcome((string)reply[0]!);

    /// <summary>Runs a command, turning a lost or refused connection into <see cref="KvStoreUnavailableException"/>.</summary>
    private static async Task<T> RunAsync<T>(Func<Task<T>> command, CancellationToken cancellationToken)
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

    private static RedisValue Microseconds(double? seconds) =>
        seconds is { } s ? Math.Max(1L, (long)Math.Round(s * 1_000_000)) : "";

    private static double? Seconds(string? microseconds) =>
        string.IsNullOrEmpty(microseconds) ? null : long.Parse(microseconds, CultureInfo.InvariantCulture) / 1_000_000.0;

    private static string Script(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("KvWorker.Redis.Scripts." + name)
            ?? throw new InvalidOperationException($"script {name} is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
