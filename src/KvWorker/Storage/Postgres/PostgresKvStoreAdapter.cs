using KvWorker.Configuration;
using KvWorker.Contracts;
using Npgsql;
using NpgsqlTypes;

namespace KvWorker.Storage.Postgres;

/// <summary>
/// The built-in <c>postgres</c> provider. Each mutation is one call of a
/// function from Schema/002_functions.sql, which locks the namespace's usage
/// row, checks quotas against the stored counters and writes, in one
/// statement and one transaction. Time is always the database's <c>now()</c>.
/// </summary>
public sealed class PostgresKvStoreAdapter(NpgsqlDataSource dataSource, PostgresAdapterOptions options, KvLimitsOptions limits)
    : IKvStoreAdapter
{
    private long? GlobalQuota => options.GlobalQuotaBytes;

    public async Task<KvGetResult> GetAsync(string ns, string key, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT value, extract(epoch FROM expires_at - now())::double precision
              FROM kv_entries
             WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(ns));
        command.Parameters.Add(Text(key));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
            return new KvGetResult { Namespace = ns, Key = key, Found = false };
        return new KvGetResult
        {
            Namespace = ns,
            Key = key,
            Found = true,
            Value = StoredValue.Parse(reader.GetString(0)),
            TtlSeconds = reader.IsDBNull(1) ? null : reader.GetDouble(1),
        };
    }

    public async Task<KvSetResult> SetAsync(
        string ns, string key, StoredValue value, double? ttlSeconds, string? requestId, CancellationToken cancellationToken)
    {
        QuotaExceededException.ThrowIfLargerThanQuota(ns, value.SizeBytes, options.NamespaceQuotaBytes, GlobalQuota);
        const string sql = "SELECT status, used_bytes, quota_bytes FROM kv_set($1, $2, $3, $4, $5, $6, $7)";
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(ns));
        command.Parameters.Add(Text(key));
        command.Parameters.Add(Text(value.Json));
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = value.SizeBytes });
        command.Parameters.Add(Seconds(ttlSeconds));
        AddQuotas(command);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        ThrowIfRejected(reader.GetString(0), ns, reader, value.SizeBytes);
        return new KvSetResult { Namespace = ns, Key = key, Value = StoredValue.Parse(value.Json), TtlSeconds = ttlSeconds };
    }

    public async Task<KvDeleteResult> DeleteAsync(string ns, string key, string? requestId, CancellationToken cancellationToken)
    {
        const string sql = "SELECT kv_delete($1, $2, $3)";
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(ns));
        command.Parameters.Add(Text(key));
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = GlobalQuota is not null });
        var deleted = (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
        return new KvDeleteResult { Namespace = ns, Key = key, Deleted = deleted };
    }

    public async Task<KvIncrementResult> IncrementAsync(
        string ns, string key, long delta, long initialValue, double? ttlSeconds, string? requestId,
        CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT status, value, ttl_seconds, used_bytes, quota_bytes
              FROM kv_increment($1, $2, $3, $4, $5, $6, $7, $8)
            """;
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(ns));
        command.Parameters.Add(Text(key));
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = delta, NpgsqlDbType = NpgsqlDbType.Numeric });
        command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = initialValue, NpgsqlDbType = NpgsqlDbType.Numeric });
        command.Parameters.Add(Seconds(ttlSeconds));
        AddQuotas(command);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limits.MaxIntegerDigits });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var status = reader.GetString(0);
        switch (status)
        {
            case "not_integer":
                throw KvStoreException.NotAnInteger(ns, key);
            case "too_large":
                throw KvStoreException.TooManyDigits(ns, key, limits.MaxIntegerDigits);
        }
        var value = reader.GetString(1);
        ThrowIfRejected(status, ns, reader, System.Text.Encoding.UTF8.GetByteCount(value), usedColumn: 3);
        return new KvIncrementResult
        {
            Namespace = ns,
            Key = key,
            Value = StoredValue.Parse(value),
            TtlSeconds = reader.IsDBNull(2) ? null : reader.GetDouble(2),
        };
    }

    public async Task<KvUsageResult> UsageAsync(string ns, CancellationToken cancellationToken)
    {
        const string sql = "SELECT used_bytes, entry_count FROM kv_namespace_usage WHERE namespace = $1";
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(Text(ns));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var found = await reader.ReadAsync(cancellationToken);
        return new KvUsageResult
        {
            Namespace = ns,
            UsedBytes = found ? reader.GetInt64(0) : 0,
            Entries = found ? reader.GetInt64(1) : 0,
            QuotaBytes = options.NamespaceQuotaBytes,
            GlobalQuotaBytes = GlobalQuota,
        };
    }

    private static void ThrowIfRejected(string status, string ns, NpgsqlDataReader reader, long attempted, int usedColumn = 1)
    {
        if (status == "ok") return;
        var used = reader.GetInt64(usedColumn);
        var quota = reader.GetInt64(usedColumn + 1);
        throw status switch
        {
            "namespace_quota" => QuotaExceededException.Namespace(ns, quota, used, attempted),
            "global_quota" => QuotaExceededException.Global(quota, used, attempted),
            _ => new InvalidOperationException($"kv function returned unknown status '{status}'"),
        };
    }

    private void AddQuotas(NpgsqlCommand command)
    {
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = options.NamespaceQuotaBytes });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)GlobalQuota ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
    }

    private static NpgsqlParameter Text(string value) => new NpgsqlParameter<string> { TypedValue = value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Seconds(double? seconds) =>
        new() { Value = (object?)seconds ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double };
}
