using KvWorker.Contracts;
using KvWorker.Storage;
using Npgsql;
using NpgsqlTypes;

namespace KvWorker.Postgres;

/// <summary>
/// The built-in <c>postgres</c> provider. Each operation is one statement —
/// a mutation is one call of a function from the Schema scripts, which claims
/// the request's identity, locks the namespace's usage row, checks quotas
/// against the stored counters and writes — and concurrent operations share
/// transactions through <see cref="GroupCommit"/>. Time is always the
/// database's <c>now()</c>.
/// </summary>
public sealed class PostgresKvStoreAdapter : IKvStoreAdapter
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresAdapterOptions _options;
    private readonly KvLimits _limits;
    private readonly GroupCommit _group;
    private readonly PostgresPurge _purge;

    public PostgresKvStoreAdapter(NpgsqlDataSource dataSource, PostgresAdapterOptions options, KvLimits limits)
    {
        _dataSource = dataSource;
        _options = options;
        _limits = limits;
        _group = new GroupCommit(dataSource, options.GroupCommit.MaxCommands, options.GroupCommit.Transactions,
            lockNamespacesFirst: options.GlobalQuotaBytes is not null);
        _purge = new PostgresPurge(dataSource, options);
    }

    private long? GlobalQuota => _options.GlobalQuotaBytes;

    /// <summary>Transactions this adapter has committed its commands in (each holding one or more).</summary>
    public long Groups => _group.Groups;

    public async Task<KvGetResult> GetAsync(KvGet request, CancellationToken cancellationToken)
    {
        // Always one row, so a grouped read has a result like every other command.
        const string sql = """
            SELECT e.value, extract(epoch FROM e.expires_at - now())::double precision
              FROM (SELECT 1) AS one
              LEFT JOIN kv_entries e
                ON e.namespace = $1 AND e.key = $2 AND (e.expires_at IS NULL OR e.expires_at > now())
            """;
        var (ns, key) = (request.Namespace, request.Key);
        var (value, ttl) = await _group.RunAsync(ns, writes: false,
            () => Command(sql, [Text(ns), Text(key)]),
            reader => (reader.IsDBNull(0) ? null : reader.GetString(0), reader.IsDBNull(1) ? (double?)null : reader.GetDouble(1)),
            cancellationToken);
        return value is null
            ? new KvGetResult { Namespace = ns, Key = key, Found = false }
            : new KvGetResult { Namespace = ns, Key = key, Found = true, Value = StoredValue.Parse(value), TtlSeconds = ttl };
    }

    public async Task<KvSetResult> SetAsync(KvSet request, StoredValue value, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        QuotaExceededException.ThrowIfLargerThanQuota(ns, value.SizeBytes, _options.NamespaceQuotaBytes, GlobalQuota);
        const string sql = "SELECT status, used_bytes, quota_bytes FROM kv_set($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        var outcome = await _group.RunAsync(ns, writes: true,
            () => Command(sql, [Text(ns), Text(key), Text(value.Json), new NpgsqlParameter<long> { TypedValue = value.SizeBytes },
                Seconds(request.TtlSeconds), NamespaceQuota(), GlobalQuotaParameter(), Thresholds(), .. Identity(identity)]),
            ReadOutcome,
            cancellationToken);
        outcome.ThrowIfRefused(ns, key, value.SizeBytes, identity, _limits.MaxIntegerDigits);
        return new KvSetResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = request.TtlSeconds };
    }

    public async Task<KvDeleteResult> DeleteAsync(KvDelete request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        const string sql = "SELECT status, deleted FROM kv_delete($1, $2, $3, $4, $5)";
        var (outcome, deleted) = await _group.RunAsync(ns, writes: true,
            () => Command(sql, [Text(ns), Text(key), new NpgsqlParameter<bool> { TypedValue = GlobalQuota is not null }, .. Identity(identity)]),
            reader => (new KvOutcome(reader.GetString(0)), !reader.IsDBNull(1) && reader.GetBoolean(1)),
            cancellationToken);
        outcome.ThrowIfRefused(ns, key, 0, identity, _limits.MaxIntegerDigits);
        return new KvDeleteResult { Namespace = ns, Key = key, Deleted = deleted };
    }

    public async Task<KvIncrementResult> IncrementAsync(KvIncrement request, RequestIdentity? identity, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        const string sql = """
            SELECT status, used_bytes, quota_bytes, value, ttl_seconds
              FROM kv_increment($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """;
        var (outcome, value, ttl) = await _group.RunAsync(ns, writes: true,
            () => Command(sql, [Text(ns), Text(key),
                new NpgsqlParameter<decimal> { TypedValue = request.Delta, NpgsqlDbType = NpgsqlDbType.Numeric },
                new NpgsqlParameter<decimal> { TypedValue = request.InitialValue, NpgsqlDbType = NpgsqlDbType.Numeric },
                Seconds(request.TtlSeconds), NamespaceQuota(), GlobalQuotaParameter(), Thresholds(),
                new NpgsqlParameter<int> { TypedValue = _limits.MaxIntegerDigits }, .. Identity(identity)]),
            reader => (ReadOutcome(reader), reader.IsDBNull(3) ? null : reader.GetString(3), reader.IsDBNull(4) ? (double?)null : reader.GetDouble(4)),
            cancellationToken);
        outcome.ThrowIfRefused(ns, key, System.Text.Encoding.UTF8.GetByteCount(value ?? ""), identity, _limits.MaxIntegerDigits);
        return new KvIncrementResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value!), TtlSeconds = ttl };
    }

    public Task<KvUsageResult> UsageAsync(KvUsage request, CancellationToken cancellationToken) =>
        PostgresFaults.RunAsync(() => ReadUsageAsync(request, cancellationToken));

    private async Task<KvUsageResult> ReadUsageAsync(KvUsage request, CancellationToken cancellationToken)
    {
        const string sql = "SELECT used_bytes, entry_count FROM kv_namespace_usage WHERE namespace = $1";
        await using var command = _dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(request.Namespace!));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var found = await reader.ReadAsync(cancellationToken);
        return new KvUsageResult
        {
            Namespace = request.Namespace!,
            UsedBytes = found ? reader.GetInt64(0) : 0,
            Entries = found ? reader.GetInt64(1) : 0,
            QuotaBytes = _options.NamespaceQuotaBytes,
            GlobalQuotaBytes = GlobalQuota,
        };
    }

    public Task<KvPurgeResult> PurgeExpiredAsync(PurgeExpiredEntries request, CancellationToken cancellationToken) =>
        PostgresFaults.RunAsync(() => _purge.RunAsync(request.Namespace, cancellationToken));

    private static KvOutcome ReadOutcome(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.IsDBNull(1) ? 0 : reader.GetInt64(1), reader.IsDBNull(2) ? 0 : reader.GetInt64(2));

    private static NpgsqlBatchCommand Command(string sql, NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    private NpgsqlParameter NamespaceQuota() => new NpgsqlParameter<long> { TypedValue = _options.NamespaceQuotaBytes };

    private NpgsqlParameter GlobalQuotaParameter() =>
        new() { Value = (object?)GlobalQuota ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint };

    private NpgsqlParameter Thresholds() => new NpgsqlParameter<double[]> { TypedValue = _options.EffectiveQuotaThresholds };

    /// <summary>The request id and the hash of the request, both null for a request without identity.</summary>
    private static NpgsqlParameter[] Identity(RequestIdentity? identity) =>
        [NullableText(identity?.MessageId), NullableText(identity?.RequestHash)];

    private static NpgsqlParameter NullableText(string? value) =>
        new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Text(string value) => new NpgsqlParameter<string> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Seconds(double? seconds) =>
        new() { Value = (object?)seconds ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double };
}
