using System.Globalization;

namespace KvWorker.Bench;

/// <summary>
/// The cost of a write must not grow with the size of its namespace: kv_set and
/// kv_increment at the highest in-flight level on random keys of a namespace
/// holding 100 entries and of one holding 100,000 (filled with SQL), one worker replica.
/// </summary>
public sealed class ScalingScenario(BenchRun run, Deployment deployment)
{
    private const double Target = 0.9;
    private static readonly int[] Sizes = [100, 100_000];
    private static readonly Operation[] Operations = [Operation.Set, Operation.Increment];

    public async Task RunAsync(RpcClient worker, CancellationToken cancellationToken)
    {
        var options = run.Options;
        var inFlight = options.TargetInFlight;
        foreach (var size in Sizes)
        {
            run.Progress($"filling namespace {Namespace(size)} with {size:N0} entries");
            // Half entries for kv_set, half counters for kv_increment.
            await deployment.PrefillAsync([Namespace(size)], Workload.KeyPrefix(Operation.Set), size / 2, Workload.SetValue, expired: false, cancellationToken);
            await deployment.PrefillAsync([Namespace(size)], Workload.KeyPrefix(Operation.Increment), size / 2, "1", expired: false, cancellationToken);
        }

        await run.WarmUpAsync(worker, cancellationToken);
        var results = new Dictionary<(Operation, int), List<Stats>>();
        for (var round = 1; round <= options.Rounds; round++)
        foreach (var operation in Operations)
        foreach (var size in Sizes)
        {
            var stats = await Load.MeasureAsync(worker, inFlight,
                (_, _) => new Request(operation, Namespace(size), Workload.KeyOf(operation, Random.Shared.Next(size / 2))),
                options.WarmUp, options.Duration, cancellationToken);
            if (!results.TryGetValue((operation, size), out var list)) results[(operation, size)] = list = [];
            list.Add(stats);
            run.Progress($"scaling round {round}  {Workload.Queue(operation),-12}  {size,7:N0} keys  {Format.Rate(stats.RequestsPerSecond),7} req/s" +
                (stats.Errors > 0 ? $"  {stats.Errors} errors: {stats.FirstError}" : ""));
        }

        var report = run.Results;
        report.Section("Scaling with namespace size");
        report.Line($"One worker replica, {inFlight} in flight, all on one namespace, random keys; medians over rounds.");
        var table = new Table("kv_set / kv_increment by namespace size", "operation",
            "100 keys req/s", "p50", "p99", "100,000 keys req/s", "p50", "p99", "ratio", $"target ≥ {Format.Percent(Target)}");
        foreach (var operation in Operations)
        {
            var small = Stats.Median(results[(operation, Sizes[0])]);
            var large = Stats.Median(results[(operation, Sizes[1])]);
            table.Row(Workload.Queue(operation),
                Format.Rate(small.RequestsPerSecond), Format.Ms(small.P50Ms), Format.Ms(small.P99Ms),
                Format.Rate(large.RequestsPerSecond), Format.Ms(large.P50Ms), Format.Ms(large.P99Ms),
                Format.Ratio(large.RequestsPerSecond, small.RequestsPerSecond),
                large.RequestsPerSecond >= Target * small.RequestsPerSecond
                    ? "holds"
                    : $"MISSED by {Format.Percent(1 - large.RequestsPerSecond / (Target * small.RequestsPerSecond))}");
        }
        report.Add(table);
    }

    private static string Namespace(int size) => "scale-" + size.ToString(CultureInfo.InvariantCulture);
}
