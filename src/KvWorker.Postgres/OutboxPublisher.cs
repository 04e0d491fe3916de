using System.Diagnostics;
using System.Text.Json;
using KvWorker.Contracts;
using KvWorker.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace KvWorker.Postgres;

/// <summary>
/// Publishes the events that mutations and purges wrote to <c>kv_outbox</c> in
/// their own transactions, so an event exists if and only if its change
/// committed. Rows are taken with <c>FOR UPDATE SKIP LOCKED</c>, so each is
/// published by one replica, and deleted in the same transaction once the
/// broker has confirmed them. A crash between confirm and commit publishes a
/// row again: delivery is at least once. A batch is bounded by
/// <c>outbox_publish_timeout_seconds</c>: a publish waits as long as the broker is
/// unreachable, and the batch's transaction must not stay open that long.
/// </summary>
public sealed class OutboxPublisher(
    NpgsqlDataSource dataSource, IKvEventPublisher events, IOptions<PostgresAdapterOptions> options, ILogger<OutboxPublisher> logger)
    : BackgroundService
{
    private const int BatchSize = 100;

    /// <summary>The event types this replica can publish, as kv_outbox names them.</summary>
    private static readonly string[] KnownEventTypes = [.. KvEvents.All.Select(type => type.Name)];

    /// <summary>How often the backlog is counted at most: a count per poll would cost more than the poll.</summary>
    private static readonly TimeSpan BacklogCountInterval = TimeSpan.FromSeconds(5);

    private long _backlogCountedAt;

    /// <summary>Rows this replica found unreadable, left in the outbox and not taken again (each is logged once).</summary>
    private readonly HashSet<long> _unreadable = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var pollInterval = TimeSpan.FromMilliseconds(options.Value.OutboxPollIntervalMs);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await CountBacklogAsync(stoppingToken);
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

    /// <summary>
    /// Publishes up to one batch of waiting events and returns how many. Only event types this
    /// replica knows are taken (a newer replica publishes those it added); a row it cannot read
    /// is logged, left in the outbox and passed over, so it holds up no other event.
    /// </summary>
    public async Task<int> PublishBatchAsync(CancellationToken cancellationToken)
    {
        var timeout = TimeSpan.FromSeconds(options.Value.OutboxPublishTimeoutSeconds);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        try
        {
            return await PublishBatchWithinAsync(bounded.Token);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException(
                $"a batch of outbox events was not published within {timeout.TotalSeconds:0.###} s (outbox_publish_timeout_seconds); it stays in the outbox", ex);
        }
    }

    private async Task<int> PublishBatchWithinAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        const string takeSql = """
            SELECT id, event_type, payload FROM kv_outbox
             WHERE event_type = ANY($2) AND NOT id = ANY($3)
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
            """;
        var waiting = new List<(long Id, string Type, string Payload)>();
        await using (var take = new NpgsqlCommand(takeSql, connection, transaction))
        {
            take.Parameters.Add(new NpgsqlParameter<int> { TypedValue = BatchSize });
            take.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = KnownEventTypes });
            take.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. _unreadable] });
            await using var reader = await take.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
                waiting.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2)));
        }
        if (waiting.Count == 0) return 0;

        var published = new List<(long Id, string Type)>();
        foreach (var (id, type, payload) in waiting)
        {
            if (Read(id, type, payload) is not { } message) continue;
            await events.PublishAsync(message, cancellationToken);
            published.Add((id, type));
        }

        const string deleteSql = "DELETE FROM kv_outbox WHERE id = ANY($1)";
        await using var delete = new NpgsqlCommand(deleteSql, connection, transaction);
        delete.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = published.Select(e => e.Id).ToArray() });
        await delete.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return published.Count;
    }

    /// <summary>The row's event, or null (logged, and remembered so it is not taken again) when its payload cannot be read as its type.</summary>
    private object? Read(long id, string type, string payload)
    {
        string problem;
        try
        {
            if (JsonSerializer.Deserialize(payload, KvEvents.Find(type)!) is { } message) return message;
            problem = "the payload is null";
        }
        catch (JsonException ex)
        {
            problem = ex.Message;
        }
        logger.LogError("kv_outbox row {Id} ({Type}) cannot be read, so it stays in the outbox: {Problem}; payload {Payload}", id, type, problem, payload);
        _unreadable.Add(id);
        return null;
    }

    /// <summary>Counts the events waiting in <c>kv_outbox</c> for the backlog gauge, while it is collected and at most every few seconds.</summary>
    private async Task CountBacklogAsync(CancellationToken cancellationToken)
    {
        if (!PostgresMetrics.OutboxBacklogCollected || Stopwatch.GetElapsedTime(_backlogCountedAt) < BacklogCountInterval) return;
        _backlogCountedAt = Stopwatch.GetTimestamp();
        const string countSql = "SELECT count(*) FROM kv_outbox";
        await using var count = dataSource.CreateCommand(countSql);
        PostgresMetrics.OutboxBacklog((long)(await count.ExecuteScalarAsync(cancellationToken))!);
    }
}
