using Npgsql;
using NpgsqlTypes;

namespace KvWorker.Bench;

/// <summary>
/// Baseline (b): each operation issued straight to PostgreSQL, one statement and one
/// commit per operation, through the worker's own SQL functions with the arguments
/// its adapter passes (see PostgresKvStoreAdapter; the newest Schema script holds the
/// signatures). Keep this the only place that spells that SQL out in the benchmark.
/// </summary>
public sealed class DirectPostgres(NpgsqlDataSource dataSource, long namespaceQuotaBytes) : ILoadTarget
{
    private static readonly double[] QuotaThresholds = [0.8, 1.0];
    private const int MaxIntegerDigits = 1000;
    private static readonly long SetValueBytes = System.Text.Encoding.UTF8.GetByteCount(Workload.SetValue);

    public string Name => "postgres";

    public async Task<string?> CallAsync(Request request, CancellationToken cancellationToken)
    {
        await using var command = Command(request);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
            return request.Operation == Operation.Get ? null : $"{request.Operation} returned no row";
        // Mutations answer with a status first; kv_delete with a boolean; kv_get with its entry.
        return request.Operation is Operation.Set or Operation.Increment && reader.GetString(0) != "ok"
            ? $"{request.Operation} answered {reader.GetString(0)}"
            : null;
    }

    private NpgsqlCommand Command(Request request)
    {
        NpgsqlCommand command;
        switch (request.Operation)
        {
            case Operation.Get:
                command = dataSource.CreateCommand("""
                    SELECT value, extract(epoch FROM expires_at - now())::double precision
                      FROM kv_entries
                     WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())
                    """);
                AddNames(command, request);
                break;
            case Operation.Set:
                command = dataSource.CreateCommand("SELECT status, used_bytes, quota_bytes FROM kv_set($1, $2, $3, $4, $5, $6, $7, $8, $9)");
                AddNames(command, request);
                command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Workload.SetValue, NpgsqlDbType = NpgsqlDbType.Text });
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = SetValueBytes });
                command.Parameters.Add(NoTtl());
                AddQuotas(command);
                command.Parameters.Add(NewRequestId());
                break;
            case Operation.Increment:
                command = dataSource.CreateCommand("""
                    SELECT status, value, ttl_seconds, used_bytes, quota_bytes
                      FROM kv_increment($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    """);
                AddNames(command, request);
                command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = 1, NpgsqlDbType = NpgsqlDbType.Numeric });
                command.Parameters.Add(new NpgsqlParameter<decimal> { TypedValue = 0, NpgsqlDbType = NpgsqlDbType.Numeric });
                command.Parameters.Add(NoTtl());
                AddQuotas(command);
                command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = MaxIntegerDigits });
                command.Parameters.Add(NewRequestId());
                break;
            case Operation.Delete:
                command = dataSource.CreateCommand("SELECT kv_delete($1, $2, $3, $4)");
                AddNames(command, request);
                command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = false }); // no global quota to maintain
                command.Parameters.Add(NewRequestId());
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(request));
        }
        return command;
    }

    private static void AddNames(NpgsqlCommand command, Request request)
    {
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.Namespace, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = request.Key, NpgsqlDbType = NpgsqlDbType.Text });
    }

    private void AddQuotas(NpgsqlCommand command)
    {
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = namespaceQuotaBytes });
        command.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint }); // no global quota
        command.Parameters.Add(new NpgsqlParameter<double[]> { TypedValue = QuotaThresholds });
    }

    private static NpgsqlParameter NoTtl() => new() { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Double };

    /// <summary>A fresh identity per operation, as every request through RabbitMQ carries.</summary>
    private static NpgsqlParameter NewRequestId() =>
        new NpgsqlParameter<string> { TypedValue = Guid.NewGuid().ToString("N"), NpgsqlDbType = NpgsqlDbType.Text };
}
