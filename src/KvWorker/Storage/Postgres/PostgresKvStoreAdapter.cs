using KvWorker.Configuration;
using KvWorker.Contracts;
using Npgsql;
using NpgsqlTypes;

namespace KvWorker.Storage.Postgres;

/// <summary>
/// The built-in <c>postgres</c> provider. Each operation is one statement —
/// a mutation is one call of a function from the Schema scripts, which records
/// the request's identity, locks the namespace's usage row, checks quotas
/// against the stored counters and writes — and concurrent operations share
/// transactions through <see cref="GroupCommit"/>. Time is always the
/// database's <c>now()</c>.
/// </summary>
public sealed class PostgresKvStoreAdapter : IKvStoreAdapter
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresAdapterOptions _options;
    private readonly KvLimitsOptions _limits;
    private readonly GroupCommit _group;

    public PostgresKvStoreAdapter(NpgsqlDataSource dataSource, PostgresAdapterOptions options, KvLimitsOptions limits)
    {
        _dataSource = dataSource;
        _options = options;
        _limits = limits;
        _group = new GroupCommit(dataSource, options.GroupCommit.MaxCommands, options.GroupCommit.Transactions,
            lockNamespacesFirst: options.GlobalQuotaBytes is not null);
    }

    private long? GlobalQuota => _options.GlobalQuotaBytes;

    /// <summary>Transactions this adapter has committed its commands in (each holding one or more).</summary>
    public long Groups => _group.Groups;

    public async Task<KvGetResult> GetAsync(string ns, string key, CancellationToken cancellationToken)
    {
        // Always one row, so a grouped read has a result like every other command.
        const string sql = """
            SELECT e.value, extract(epoch FROM e.expires_at - now())::double precision
              FROM (SELECT 1) AS one
              LEFT JOIN kv_entries e
                ON e.namespace = $1 AND e.key = $2 AND (e.expires_at IS NULL OR e.expires_at > now())
            """;
        var (value, ttl) = await _group.RunAsync(ns, writes: false,
            () => Command(sql, Text(ns), Text(key)),
            reader => (reader.IsDBNull(0) ? null : reader.GetString(0), reader.IsDBNull(1) ? (double?)null : reader.GetDouble(1)),
            cancellationToken);
        return value is null
            ? new KvGetResult { Namespace = ns, Key = key, Found = false }
            : new KvGetResult { Namespace = ns, Key = key, Found = true, Value = StoredValue.Parse(value), TtlSeconds = ttl };
    }

    public async Task<KvSetResult> SetAsync(
        string ns, string key, StoredValue value, double? ttlSeconds, string? requestId, CancellationToken cancellationToken)
    {
        QuotaExceededException.ThrowIfLargerThanQuota(ns, value.SizeBytes, _options.NamespaceQuotaBytes, GlobalQuota);
        const string sql = "SELECT status, used_bytes, quota_bytes FROM kv_set($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        var outcome = await _group.RunAsync(ns, writes: true,
            () => Command(sql, Text(ns), Text(key), Text(value.Json), new NpgsqlParameter<long> { TypedValue = value.SizeBytes },
                Seconds(ttlSeconds), NamespaceQuota(), GlobalQuotaParameter(), Thresholds(), RequestId(requestId)),
            ReadOutcome,
            cancellationToken);
        ThrowIfRejected(outcome, ns, value.SizeBytes);
        return new KvSetResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = ttlSeconds };
    }

    public async Task<KvDeleteResult> DeleteAsync(string ns, string key, string? requestId, CancellationToken cancellationToken)
    {
        const string sql = "SELECT kv_delete($1, $2, $3, $4)";
        var deleted = await _group.RunAsync(ns, writes: true,
            () => Command(sql, Text(ns), Text(key), new NpgsqlParameter<bool> { TypedValue = GlobalQuota is not null }, RequestId(requestId)),
            reader => reader.IsDBNull(0) ? (bool?)null : reader.GetBoolean(0),
            cancellationToken);
        return new KvDeleteResult { Namespace = ns, Key = key, Deleted = deleted ?? throw ReusedRequestId(requestId) };
    }

    public async Task<KvIncrementResult> IncrementAsync(
        string ns, string key, long delta, long initialValue, double? ttlSeconds, string? requestId,
        CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT status, used_bytes, quota_bytes, value, ttl_seconds
              FROM kv_increment($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """;
        var (outcome, value, ttl) = await _group.RunAsync(ns, writes: true,
            () => Command(sql, Text(ns), Text(key),
                new NpgsqlParameter<decimal> { TypedValue = delta, NpgsqlDbType = NpgsqlDbType.Numeric },
                new NpgsqlParameter<decimal> { TypedValue = initialValue, NpgsqlDbType = NpgsqlDbType.Numeric },
                Seconds(ttlSeconds), NamespaceQuota(), GlobalQuotaParameter(), Thresholds(),
                new NpgsqlParameter<int> { TypedValue = _limits.MaxIntegerDigits }, RequestId(requestId)),
            reader => (ReadOutcome(reader), reader.IsDBNull(3) ? null : reader.GetString(3), reader.IsDBNull(4) ? (double?)null : reader.GetDouble(4)),
            cancellationToken);
        switch (outcome.Status)
        {
            case "not_integer":
                throw KvStoreException.NotAnInteger(ns, key);
            case "too_large":
                throw KvStoreException.TooManyDigits(ns, key, _limits.MaxIntegerDigits);
        }
        if (value is null)
            throw ReusedRequestId(requestId);
        ThrowIfRejected(outcome, ns, System.Text.Encoding.UTF8.GetByteCount(value));
        return new KvIncrementResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value), TtlSeconds = ttl };
    }

    public async Task<KvUsageResult> UsageAsync(string ns, CancellationToken cancellationToken)
    {
        const string sql = "SELECT used_bytes, entry_count FROM kv_namespace_usage WHERE namespace = $1";
        await using var command = _dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(ns));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var found = await reader.ReadAsync(cancellationToken);
        return new KvUsageResult
        {
            Namespace = ns,
            UsedBytes = found ? reader.GetInt64(0) : 0,
            Entries = found ? reader.GetInt64(1) : 0,
            QuotaBytes = _options.NamespaceQuotaBytes,
            GlobalQuotaBytes = GlobalQuota,
        };
    }

    /// <summary>A mutation function's verdict, and the figures of the quota that decided it.</summary>
    private sealed record Outcome(string Status, long? UsedBytes, long? QuotaBytes);

    private static Outcome ReadOutcome(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetInt64(2));

    private static void ThrowIfRejected(Outcome outcome, string ns, long attempted)
    {
        if (outcome.Status is "ok" or "replayed") return;
        var (used, quota) = (outcome.UsedBytes ?? 0, outcome.QuotaBytes ?? 0);
        throw outcome.Status switch
        {
            "namespace_quota" => QuotaExceededException.Namespace(ns, quota, used, attempted),
            "global_quota" => QuotaExceededException.Global(quota, used, attempted),
            _ => new InvalidOperationException($"kv function returned unknown status '{outcome.Status}'"),
        };
    }

    private static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    private NpgsqlParameter NamespaceQuota() => new NpgsqlParameter<long> { TypedValue = _options.NamespaceQuotaBytes };

    private NpgsqlParameter GlobalQuotaParameter() =>
        new() { Value = (object?)GlobalQuota ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint };

    private NpgsqlParameter Thresholds() => new NpgsqlParameter<double[]> { TypedValue = _options.EffectiveQuotaThresholds };

    private static NpgsqlParameter RequestId(string? requestId) =>
        new() { Value = (object?)requestId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    /// <summary>A replay whose first answer was of another operation: the identity was reused for a different request.</summary>
    private static KvStoreException ReusedRequestId(string? requestId) =>
        KvStoreException.InvalidRequest($"message_id '{requestId}' was already used by a different request");

    private static NpgsqlParameter Text(string value) => new NpgsqlParameter<string> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Seconds(double? seconds) =>
        new() { Value = (object?)seconds ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double };
}
