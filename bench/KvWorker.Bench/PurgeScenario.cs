using System.Diagnostics;
using System.Globalization;

namespace KvWorker.Bench;

/// <summary>
/// A large purge must not stall requests: a steady mix of the four operations runs
/// against one worker while it purges expired entries (inserted with SQL into the
/// namespaces the load uses) in batches of the default size, every second.
/// </summary>
public sealed class PurgeScenario(BenchRun run, Deployment deployment)
{
    private const int InFlight = 16;
    private static readonly TimeSpan PurgeTimeLimit = TimeSpan.FromMinutes(20);

    /// <summary>The worker looks for expired entries every second (batch size stays at its default).</summary>
    public static Dictionary<string, string?> WorkerSettings { get; } = new()
    {
        ["tools:kv_store:adapters:postgres:purge_interval_seconds"] = "1",
    };

    public async Task RunAsync(RpcClient worker, CancellationToken cancellationToken)
    {
        var options = run.Options;
        var namespaces = Enumerable.Range(0, InFlight).Select(lane => Workload.LaneNamespace(worker.Name, lane)).ToList();
        await deployment.FillLanesAsync(worker.Name, InFlight, cancellationToken);
        var perNamespace = (options.PurgeEntries + InFlight - 1) / InFlight;
        var phaseLength = options.Duration < TimeSpan.FromSeconds(3) ? TimeSpan.FromSeconds(3) : options.Duration;

        await run.WarmUpAsync(worker, cancellationToken);
        await using var load = Load.Start(worker, InFlight, (lane, sequence) => Workload.MixedRequest(worker.Name, lane, sequence));
        await Task.Delay(options.WarmUp, cancellationToken);
        run.Progress($"purge: steady load, {InFlight} in flight, before the purge");
        var before = load.Record();
        await Task.Delay(phaseLength, cancellationToken);

        run.Progress($"purge: inserting {perNamespace * InFlight:N0} expired entries");
        var inserting = load.Record();
        var clock = Stopwatch.StartNew();
        await deployment.PrefillAsync(namespaces, "expired-", perNamespace, Workload.SetValue, expired: true, cancellationToken);
        var insertTime = clock.Elapsed;

        var during = load.Record();
        clock.Restart();
        var lastProgress = TimeSpan.Zero;
        long left;
        while ((left = await deployment.CountExpiredAsync(cancellationToken)) > 0)
        {
            if (clock.Elapsed > PurgeTimeLimit)
                throw new TimeoutException($"the worker had not purged the expired entries after {PurgeTimeLimit}; {left:N0} left");
            if (clock.Elapsed - lastProgress >= TimeSpan.FromSeconds(5))
            {
                run.Progress($"purge: {left:N0} expired entries left after {Format.Seconds(clock.Elapsed.TotalSeconds)}");
                lastProgress = clock.Elapsed;
            }
            await Task.Delay(250, cancellationToken);
        }
        var purgeTime = clock.Elapsed;

        run.Progress("purge: done; steady load after the purge");
        var after = load.Record();
        await Task.Delay(phaseLength, cancellationToken);
        await load.StopAsync();

        var report = run.Results;
        report.Section("Purge under load");
        report.Line(string.Create(CultureInfo.InvariantCulture,
            $"One worker replica (purge every 1 s, default batch size), a steady mix of the four operations at {InFlight} in flight."));
        report.Line(string.Create(CultureInfo.InvariantCulture,
            $"{perNamespace * InFlight:N0} expired entries in the load's {InFlight} namespaces were purged in {Format.Seconds(purgeTime.TotalSeconds)} " +
            $"({Format.Rate(perNamespace * InFlight / purgeTime.TotalSeconds)} entries/s); inserting them took {Format.Seconds(insertTime.TotalSeconds)}."));
        var table = new Table("latency of the mixed load by phase", "phase", "req/s", "p50 ms", "p99 ms", "max ms", "errors");
        foreach (var (phase, recorder) in new[] { ("before", before), ("inserting (SQL)", inserting), ("during purge", during), ("after", after) })
        {
            var stats = recorder.Stats();
            table.Row(phase, Format.Rate(stats.RequestsPerSecond), Format.Ms(stats.P50Ms), Format.Ms(stats.P99Ms), Format.Ms(stats.MaxMs),
                stats.Errors.ToString(CultureInfo.InvariantCulture));
        }
        report.Add(table);
    }
}
