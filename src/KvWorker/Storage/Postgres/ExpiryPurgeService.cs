using KvWorker.Configuration;
using KvWorker.Telemetry;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Storage.Postgres;

/// <summary>
/// Every <c>purge_interval_seconds</c>, removes expired entries and forgets
/// processed requests past their retention, in short transactions of at most
/// <c>purge_batch_size</c> rows. Each batch first takes a transaction-scoped
/// advisory lock without waiting, so across any number of replicas one purge
/// runs at a time and the others simply skip their turn.
/// </summary>
public sealed class ExpiryPurgeService(
    NpgsqlDataSource dataSource, IOptions<KvStoreOptions> options, ILogger<ExpiryPurgeService> logger) : BackgroundService
{
    /// <summary>Arbitrary, fixed: the advisory lock key that every replica's purge contends for.</summary>
    public const long PurgeLockKey = 0x6b765f7075726765; // "kv_purge"

    private PostgresAdapterOptions Settings => options.Value.Adapters.Postgres;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Settings.PurgeIntervalSeconds));
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await PurgeAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                logger.LogWarning("Purge interrupted, will run again in {Interval} s: {Message}", Settings.PurgeIntervalSeconds, ex.Message);
            }
        }
    }

    /// <summary>Runs batches until nothing is left to remove or another replica holds the purge lock.</summary>
    public async Task<PurgeSummary> PurgeAsync(CancellationToken cancellationToken)
    {
        var total = new PurgeSummary(0, 0, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            var batch = await PurgeBatchAsync(cancellationToken);
            if (batch is null) break;
            total = total.Add(batch);
            if (batch.Entries < Settings.PurgeBatchSize && batch.Requests < Settings.PurgeBatchSize) break;
        }
        if (total.Entries > 0 || total.Requests > 0)
            logger.LogInformation("Purged {Entries} expired entries ({Bytes} bytes) and {Requests} processed requests",
                total.Entries, total.Bytes, total.Requests);
        return total;
    }

    /// <summary>One short transaction; null when another replica is purging.</summary>
    private async Task<PurgeSummary?> PurgeBatchAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        const string lockSql = "SELECT pg_try_advisory_xact_lock($1)";
        await using (var lockCommand = new NpgsqlCommand(lockSql, connection, transaction))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = PurgeLockKey });
            if (await lockCommand.ExecuteScalarAsync(cancellationToken) is not true)
                return null;
        }

        var purged = new List<(string Namespace, long Entries, long Bytes)>();
        const string purgeSql = "SELECT purged_namespace, purged_entries, purged_bytes FROM kv_purge_expired($1, $2)";
        await using (var purge = new NpgsqlCommand(purgeSql, connection, transaction))
        {
            purge.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Settings.PurgeBatchSize });
            purge.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = Settings.GlobalQuotaBytes is not null });
            await using var reader = await purge.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
                purged.Add((reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
        }

        const string forgetSql = """
            DELETE FROM kv_processed_requests
             WHERE request_id IN (SELECT request_id FROM kv_processed_requests
                                   WHERE processed_at < now() - $1 * interval '1 second'
                                   ORDER BY processed_at LIMIT $2)
            """;
        await using var forget = new NpgsqlCommand(forgetSql, connection, transaction);
        forget.Parameters.Add(new NpgsqlParameter<double> { TypedValue = Settings.RequestRetentionSeconds });
        forget.Parameters.Add(new NpgsqlParameter<int> { TypedValue = Settings.PurgeBatchSize });
        var requests = await forget.ExecuteNonQueryAsync(cancellationToken);

        await transaction.CommitAsync(cancellationToken);
        foreach (var (ns, entries, bytes) in purged) KvMetrics.PurgeCompleted(ns, entries, bytes);
        return new PurgeSummary(purged.Sum(p => p.Entries), purged.Sum(p => p.Bytes), requests);
    }
}

public sealed record PurgeSummary(long Entries, long Bytes, long Requests)
{
    public PurgeSummary Add(PurgeSummary other) => new(Entries + other.Entries, Bytes + other.Bytes, Requests + other.Requests);
}
