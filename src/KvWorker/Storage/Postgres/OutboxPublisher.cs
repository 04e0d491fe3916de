using System.Text.Json;
using KvWorker.Configuration;
using KvWorker.Contracts;
using MassTransit;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Storage.Postgres;

/// <summary>
/// Publishes the events that mutations and purges wrote to <c>kv_outbox</c> in
/// their own transactions, so an event exists if and only if its change
/// committed. Rows are taken with <c>FOR UPDATE SKIP LOCKED</c>, so each is
/// published by one replica, and deleted in the same transaction once the
/// broker has confirmed them. A crash between confirm and commit publishes a
/// row again: delivery is at least once.
/// </summary>
public sealed class OutboxPublisher(
    NpgsqlDataSource dataSource, IBus bus, IOptions<KvStoreOptions> options, ILogger<OutboxPublisher> logger) : BackgroundService
{
    private const int BatchSize = 100;

    public static readonly IReadOnlyDictionary<string, Type> EventTypes = new Dictionary<string, Type>
    {
        [nameof(KvEntriesExpired)] = typeof(KvEntriesExpired),
        [nameof(NamespaceQuotaThresholdReached)] = typeof(NamespaceQuotaThresholdReached),
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pollInterval = TimeSpan.FromMilliseconds(options.Value.Adapters.Postgres.OutboxPollIntervalMs);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await PublishBatchAsync(stoppingToken) == BatchSize) continue;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // The rows stay in the outbox; the next attempt publishes them.
                logger.LogWarning("Publishing outbox events failed, retrying: {Message}", ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
            await Task.Delay(pollInterval, stoppingToken);
        }
    }

    /// <summary>Publishes up to one batch of waiting events and returns how many.</summary>
    public async Task<int> PublishBatchAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        const string takeSql = "SELECT id, event_type, payload FROM kv_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";
        var events = new List<(long Id, string Type, string Payload)>();
        await using (var take = new NpgsqlCommand(takeSql, connection, transaction))
        {
            take.Parameters.Add(new NpgsqlParameter<int> { TypedValue = BatchSize });
            await using var reader = await take.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
                events.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2)));
        }
        if (events.Count == 0) return 0;

        foreach (var (id, type, payload) in events)
        {
            if (!EventTypes.TryGetValue(type, out var messageType))
                throw new InvalidOperationException($"kv_outbox row {id} has unknown event type '{type}'");
            var message = JsonSerializer.Deserialize(payload, messageType)
                ?? throw new InvalidOperationException($"kv_outbox row {id} has an empty payload");
            await bus.Publish(message, messageType, cancellationToken);
        }

        const string deleteSql = "DELETE FROM kv_outbox WHERE id = ANY($1)";
        await using var delete = new NpgsqlCommand(deleteSql, connection, transaction);
        delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = events.Select(e => e.Id).ToArray() });
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return events.Count;
    }
}
