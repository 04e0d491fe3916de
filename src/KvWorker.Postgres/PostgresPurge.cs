using KvWorker.Contracts;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>
/// Removes expired entries and forgets request identities past their retention,
/// in short transactions of at most <c>purge_batch_size</c> rows each, so a large
/// purge never holds one long transaction. A run holds a session advisory lock
/// from start to end: across any number of replicas two purges never overlap,
/// and one asked for while another runs does nothing and says so.
/// </summary>
public sealed class PostgresPurge(NpgsqlDataSource dataSource, PostgresAdapterOptions options)
{
    /// <summary>Arbitrary, fixed: the advisory lock key every replica's purge contends for.</summary>
    public const long PurgeLockKey = 0x6b765f7075726765; // "kv_purge"

    public async Task<KvPurgeResult> RunAsync(string? ns, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        if (!await AdvisoryLockAsync(connection, "SELECT pg_try_advisory_lock($1)", cancellationToken))
            return new KvPurgeResult { Namespace = ns, Ran = false };
        try
        {
            var purged = new Dictionary<string, (long Entries, long Bytes)>(StringComparer.Ordinal);
            long forgotten = 0;
            var (entriesLeft, requestsLeft) = (true, true);
            // Batch by batch, expired entries and old identities in turn, so a backlog of either does not
            // keep the other waiting. When the request's time budget runs out the run stops with what its
            // committed batches did (a batch cut short rolls back) and says it is not complete; the next run
            // goes on. It is not an error: a large backlog simply takes several runs.
            try
            {
                while (entriesLeft || requestsLeft)
                {
                    if (entriesLeft)
                    {
                        var batch = await PurgeBatchAsync(connection, ns, cancellationToken);
                        foreach (var (name, entries, bytes) in batch)
                        {
                            var (e, b) = purged.GetValueOrDefault(name);
                            purged[name] = (e + entries, b + bytes);
                        }
                        entriesLeft = batch.Sum(b => b.Entries) >= options.PurgeBatchSize;
                    }
                    if (requestsLeft)
                    {
                        var forgottenNow = await ForgetRequestsAsync(connection, cancellationToken);
                        forgotten += forgottenNow;
                        requestsLeft = forgottenNow >= options.PurgeBatchSize;
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }

            var at = DateTimeOffset.UtcNow;
            return new KvPurgeResult
            {
                Namespace = ns,
                Ran = true,
                Complete = !(entriesLeft || requestsLeft),
                Entries = purged.Values.Sum(p => p.Entries),
                BytesFreed = purged.Values.Sum(p => p.Bytes),
                RequestsForgotten = forgotten,
                Namespaces = [.. purged.Select(p => new KvEntriesExpired { Namespace = p.Key, Count = p.Value.Entries, BytesFreed = p.Value.Bytes, At = at })],
            };
        }
        finally
        {
            // A lost connection took its session, and the lock, with it; unlocking there would fail and
            // hide the fault that lost it (which the worker retries) behind "connection is not open".
            if (connection.State == System.Data.ConnectionState.Open)
                await AdvisoryLockAsync(connection, "SELECT pg_advisory_unlock($1)", CancellationToken.None);
        }
    }

    private static async Task<bool> AdvisoryLockAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = PurgeLockKey });
        return await command.ExecuteScalarAsync(cancellationToken) is true;
    }

    /// <summary>One short transaction: up to purge_batch_size expired entries, their counters and their events.</summary>
    private async Task<List<(string Namespace, long Entries, long Bytes)>> PurgeBatchAsync(
        NpgsqlConnection connection, string? ns, CancellationToken cancellationToken)
    {
        const string sql = "SELECT purged_namespace, purged_entries, purged_bytes FROM kv_purge_expired($1, $2, $3)";
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = options.PurgeBatchSize });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = options.GlobalQuotaBytes is not null });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)ns ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        var purged = new List<(string, long, long)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            purged.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
        return purged;
    }

    /// <summary>Forgets up to purge_batch_size request identities older than request_retention_seconds.</summary>
    private async Task<int> ForgetRequestsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        const string sql = """
            DELETE FROM kv_processed_requests
             WHERE request_id IN (SELECT request_id FROM kv_processed_requests
                                   WHERE processed_at < now() - $1 * interval '1 second'
                                   ORDER BY processed_at LIMIT $2)
            """;
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = options.RequestRetentionSeconds });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = options.PurgeBatchSize });
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
