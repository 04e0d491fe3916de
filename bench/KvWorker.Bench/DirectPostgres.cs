using System.Text.Json;
using KvWorker.Contracts;
using KvWorker.Postgres;
using KvWorker.Storage;
using Npgsql;

namespace KvWorker.Bench;

/// <summary>
/// Baseline (b): each operation applied straight to PostgreSQL by the worker's own
/// adapter with group commit switched off, so every operation is one statement and one
/// commit, up to <paramref name="inFlight"/> of them at once. The worker's figures
/// against this one show what the message path and group commit add and save.
/// </summary>
public sealed class DirectPostgres(NpgsqlDataSource dataSource, long namespaceQuotaBytes, int inFlight = 64) : ILoadTarget
{
    private static readonly JsonElement SetValue = JsonDocument.Parse(Workload.SetValue).RootElement.Clone();
    private static readonly StoredValue StoredSetValue = StoredValue.From(SetValue, maxDepth: 32);

    private readonly PostgresKvStoreAdapter _adapter = new(dataSource,
        new PostgresAdapterOptions
        {
            NamespaceQuotaBytes = namespaceQuotaBytes,
            GroupCommit = new GroupCommitOptions { MaxCommands = 1, Transactions = inFlight, ReadTransactions = 0 },
        },
        new KvLimits());

    public string Name => "postgres";

    public async Task<string?> CallAsync(Request request, CancellationToken cancellationToken)
    {
        var (ns, key) = (request.Namespace, request.Key);
        // A fresh identity per operation, time-ordered like the one KvClient gives every request through RabbitMQ.
        var messageId = Guid.CreateVersion7().ToString();
        try
        {
            switch (request.Operation.Name)
            {
                case "kv_get":
                    await _adapter.GetAsync(new KvGet { Namespace = ns, Key = key }, cancellationToken);
                    break;
                case "kv_set":
                    var set = new KvSet { Namespace = ns, Key = key, Value = SetValue };
                    await _adapter.SetAsync(set, StoredSetValue, RequestIdentity.Of(messageId, KvOperations.Set, ns, key, set), cancellationToken);
                    break;
                case "kv_increment":
                    var increment = new KvIncrement { Namespace = ns, Key = key };
                    await _adapter.IncrementAsync(increment, RequestIdentity.Of(messageId, KvOperations.Increment, ns, key, increment), cancellationToken);
                    break;
                case "kv_delete":
                    var delete = new KvDelete { Namespace = ns, Key = key };
                    await _adapter.DeleteAsync(delete, RequestIdentity.Of(messageId, KvOperations.Delete, ns, key, delete), cancellationToken);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(request), $"the PostgreSQL baseline does not run {request.Operation.Name}");
            }
            return null;
        }
        catch (KvStoreException ex)
        {
            return $"{ex.Code}: {ex.Message}";
        }
    }
}
