using KvWorker.Configuration;
using KvWorker.Contracts;
using KvWorker.Postgres;
using KvWorker.Storage;
using MassTransit;
using Microsoft.Extensions.Options;

namespace KvWorker.Purge;

/// <summary>
/// Sends <see cref="PurgeExpiredEntries"/> to <c>kv_purge</c> once per
/// <c>purge_interval_seconds</c> for the whole deployment, one command per
/// registered provider: every replica asks, and the one that claims the interval
/// in <see cref="PurgeSchedule"/> sends. Whichever replica then takes a command
/// runs the purge; a send that fails is tried again at the next look. The
/// commands carry the worker's own broker user as user_id, which the persona
/// policy admits for kv_purge.
/// </summary>
public sealed class PurgeScheduler(
    PurgeSchedule schedule, IBus bus, KvStoreAdapterRegistry adapters,
    IOptions<PostgresAdapterOptions> postgres, IOptions<RabbitMqOptions> rabbitMq, ILogger<PurgeScheduler> logger) : BackgroundService
{
    public const string Job = "kv_purge";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(postgres.Value.PurgeIntervalSeconds);
        // Look a few times per interval, so the deployment's purge is late by a fraction of it at most.
        var look = TimeSpan.FromSeconds(Math.Clamp(interval.TotalSeconds / 4, 0.25, 15));
        using var timer = new PeriodicTimer(look);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                // A send that fails gives the interval back, so the next look sends it.
                await schedule.RunIfDueAsync(Job, interval, SendAsync, stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Could not schedule the purge, will try again in {Look}: {Message}", look, ex.Message);
            }
        }
    }

    private async Task SendAsync(CancellationToken cancellationToken)
    {
        var endpoint = await bus.GetSendEndpoint(new Uri("exchange:" + KvOperations.Purge.Queue));
        foreach (var provider in adapters.Names.Order())
        {
            await endpoint.Send(new PurgeExpiredEntries { Provider = provider }, send =>
            {
                if (send.TryGetPayload<RabbitMqSendContext>(out var amqp)) amqp.BasicProperties.UserId = rabbitMq.Value.Username;
            }, cancellationToken);
        }
        logger.LogDebug("Sent the purge for {Providers}", string.Join(", ", adapters.Names.Order()));
    }
}
