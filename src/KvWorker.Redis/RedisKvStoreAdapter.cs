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

    public async Task<KvGetResult> GetAsync(string ns, string key, CancellationToken cancellationToken)
    {
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

    public async Task<KvSetResult> SetAsync(
        string ns, string key, StoredValue value, double? ttlSeconds, string? requestId, CancellationToken cancellationToken)
    {
        QuotaExceededException.ThrowIfLargerThanQuota(ns, value.SizeBytes, _options.NamespaceQuotaBytes, GlobalQuota);
        var ttlText = ttlSeconds?.ToString("R", CultureInfo.InvariantCulture) ?? "";
        var reply = await MutateAsync(SetScript, ns, key, requestId, [value.Json, Microseconds(ttlSeconds), ttlText], cancellationToken);
        ThrowIfRejected(reply, ns, key);
        if ((string?)reply[0] == "replayed")
        {
            var recordedTtl = (string?)reply[2];
            return new KvSetResult
            {
                Namespace = ns,
                Key = key,
                Value = StoredValue.Parse((string)reply[1]!),
                TtlSeconds = string.IsNullOrEmpty(recordedTtl) ? null : double.Parse(recordedTtl, CultureInfo.InvariantCulture),
            };
        }
        return new KvSetResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = ttlSeconds };
    }

    public async Task<KvDeleteResult> DeleteAsync(string ns, string key, string? requestId, CancellationToken cancellationToken)
    {
        var reply = await MutateAsync(DeleteScript, ns, key, requestId, [], cancellationToken);
        ThrowIfRejected(reply, ns, key);
        return new KvDeleteResult { Namespace = ns, Key = key, Deleted = (string?)reply[1] == "1" };
    }

    public async Task<KvIncrementResult> IncrementAsync(
        string ns, string key, long delta, long initialValue, double? ttlSeconds, string? requestId,
        CancellationToken cancellationToken)
    {
        var reply = await MutateAsync(IncrementScript, ns, key, requestId,
            [delta.ToString(CultureInfo.InvariantCulture), initialValue.ToString(CultureInfo.InvariantCulture),
             Microseconds(ttlSeconds), _maxIntegerDigits.ToString(CultureInfo.InvariantCulture)],
            cancellationToken);
        ThrowIfRejected(reply, ns, key);
        switch ((string?)reply[0])
        {
            case "not_integer":
                throw KvStoreException.NotAnInteger(ns, key);
            case "too_large":
                throw KvStoreException.TooManyDigits(ns, key, _maxIntegerDigits);
        }
        return new KvIncrementResult
        {
            Namespace = ns,
            Key = key,
            Value = StoredValue.Parse((string)reply[1]!),
            TtlSeconds = Seconds((string?)reply[2]),
        };
    }

    public async Task<KvUsageResult> UsageAsync(string ns, CancellationToken cancellationToken)
    {
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

    public async ValueTask DisposeAsync()
    {
        if (_ownsConnection) await _redis.DisposeAsync();
    }

    private RedisKey ValuesKey(string ns) => Prefix + "v:" + ns;
    private RedisKey ExpiryKey(string ns) => Prefix + "x:" + ns;
    private RedisKey UsageKey(string ns) => Prefix + "u:" + ns;

    /// <summary>
    /// A request identity's record is scoped to its namespace and key; the
    /// lengths make the name unambiguous whatever characters the parts hold.
    /// </summary>
    private RedisKey RequestKey(string ns, string key, string requestId) =>
        $"{Prefix}r:{ns.Length}:{ns}{key.Length}:{key}{requestId}";

    private async Task<RedisResult[]> MutateAsync(
        string script, string ns, string key, string? requestId, RedisValue[] arguments, CancellationToken cancellationToken)
    {
        RedisKey[] keys = [ValuesKey(ns), ExpiryKey(ns), UsageKey(ns), Prefix + "g", Prefix + "gx"];
        if (requestId is not null) keys = [.. keys, RequestKey(ns, key, requestId)];
        RedisValue[] values =
        [
            Prefix, ns, key,
            _options.NamespaceQuotaBytes,
            GlobalQuota is { } global ? global : "",
            (long)Math.Ceiling(_options.RequestRetentionSeconds * 1000),
            .. arguments,
        ];
        var result = await RunAsync(() => Database.ScriptEvaluateAsync(script, keys, values), cancellationToken);
        return (RedisResult[])result!;
    }

    /// <summary>Throws for a reply that rejected the mutation; the increment-only statuses are left to the caller.</summary>
    private static void ThrowIfRejected(RedisResult[] reply, string ns, string key)
    {
        var status = (string?)reply[0];
        if (status is "ok" or "replayed" or "not_integer" or "too_large") return;
        throw status switch
        {
            "namespace_quota" => QuotaExceededException.Namespace(ns, (long)reply[2], (long)reply[1], (long)reply[3]),
            "global_quota" => QuotaExceededException.Global((long)reply[2], (long)reply[1], (long)reply[3]),
            "request_conflict" => KvStoreException.InvalidRequest(
                $"the request id was already used by a {(string?)reply[1]} of '{key}' in namespace '{ns}'"),
            _ => new InvalidOperationException($"kv script returned unknown status '{status}'"),
        };
    }

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
