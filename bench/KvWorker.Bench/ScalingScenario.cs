using System.Globalization;
using KvWorker.Contracts;

namespace KvWorker.Bench;

/// <summary>
/// The cost of a request must not grow with the size of its namespace: kv_set,
/// kv_increment and a kv_list page of 100 keys at the highest in-flight level, on
/// random keys of a namespace holding 100 entries and of one holding 100,000 (filled
/// with SQL), one worker replica; and kv_get_many of 100 keys beside a kv_get.
/// </summary>
public sealed class ScalingScenario(BenchRun run, Deployment deployment)
{
    private const double Target = 0.9;
    private static readonly int[] Sizes = [100, 100_000];
    private static readonly KvOperation[] Operations = [KvOperations.Set, KvOperations.Increment, KvOperations.List, KvOperations.Get, KvOperations.GetMany];

    public async Task RunAsync(RpcClient worker, CancellationToken cancellationToken)
    {
        var options = run.Options;
        var inFlight = options.TargetInFlight;
        foreach (var size in Sizes)
        {
            run.Progress($"filling namespace {Namespace(size)} with {size:N0} entries");
            // Half entries for kv_set, kv_get and kv_get_many, half counters for kv_increment.
            await deployment.PrefillAsync([Namespace(size)], Workload.KeyPrefix(KvOperations.Set), size / 2, Workload.SetValue, expired: false, cancellationToken);
            await deployment.PrefillAsync([Namespace(size)], Workload.KeyPrefix(KvOperations.Increment), size / 2, "1", expired: false, cancellationToken);
        }

        await run.WarmUpAsync(worker, cancellationToken);
        var results = new Dictionary<(KvOperation, int), List<Stats>>();
        for (var round = 1; round <= options.Rounds; round++)
        foreach (var operation in Operations)
        foreach (var size in Sizes)
        {
            var stats = await Load.MeasureAsync(worker, inFlight, (_, _) => Next(operation, size), options.WarmUp, options.Duration, cancellationToken);
            if (!results.TryGetValue((operation, size), out var list)) results[(operation, size)] = list = [];
            list.Add(stats);
            run.Progress($"scaling round {round}  {operation.Name,-12}  {size,7:N0} keys  {Format.Rate(stats.RequestsPerSecond),7} req/s" +
                (stats.Errors > 0 ? $"  {stats.Errors} errors: {stats.FirstError}" : ""));
        }

        var report = run.Results;
        report.Section("Scaling with namespace size");
        report.Line($"One worker replica, {inFlight} in flight, all on one namespace, random keys; medians over rounds. kv_list reads a page");
        report.Line("of 100 keys (after a random key in the large namespace; the small one holds just one page); kv_get_many reads");
        report.Line("100 keys that all exist, 50 entries and 50 counters numbered on from a random one (the small namespace's all).");
        var table = new Table("Requests by namespace size", "operation",
            "100 keys req/s", "p50", "p99", "100,000 keys req/s", "p50", "p99", "ratio", $"target ≥ {Format.Percent(Target)}");
        foreach (var operation in Operations)
        {
            var small = Stats.Median(results[(operation, Sizes[0])]);
            var large = Stats.Median(results[(operation, Sizes[1])]);
            table.Row(operation.Name,
                Format.Rate(small.RequestsPerSecond), Format.Ms(small.P50Ms), Format.Ms(small.P99Ms),
                Format.Rate(large.RequestsPerSecond), Format.Ms(large.P50Ms), Format.Ms(large.P99Ms),
                Format.Ratio(large.RequestsPerSecond, small.RequestsPerSecond),
                large.RequestsPerSecond >= Target * small.RequestsPerSecond
                    ? "holds"
                    : $"MISSED by {Format.Percent(1 - large.RequestsPerSecond / (Target * small.RequestsPerSecond))}");
        }
        report.Add(table);

        // Error replies count as answered requests, so the report says when there were any (the progress lines alone are not kept).
        foreach (var ((operation, size), rounds) in results.Where(r => r.Value.Sum(s => s.Errors) > 0))
            report.Line($"- {operation.Name}, {size:N0} keys: {rounds.Sum(s => s.Errors)} requests answered with an error (counted above), " +
                $"e.g. {rounds.First(s => s.FirstError is not null).FirstError}");
    }

    private static Request Next(KvOperation operation, int size)
    {
        var keys = size / 2;
        var key = operation.Name switch
        {
            "kv_list" => size == Sizes[0] ? "" : Workload.KeyOf(KvOperations.Set, Random.Shared.Next(keys)),
            // Every key a kv_get_many asks for exists, in both namespaces: the same work, whatever the size.
            "kv_get_many" => Workload.KeyOf(KvOperations.Set, Random.Shared.Next(keys - Workload.GetManyKeyCount / 2 + 1)),
            // Any key the namespace holds (50 in the small one), so the small namespace is not one hot key.
            "kv_increment" => Workload.KeyOf(KvOperations.Increment, Random.Shared.Next(keys)),
            _ => Workload.KeyOf(KvOperations.Set, Random.Shared.Next(keys)),
        };
        return new Request(operation, Namespace(size), key);
    }

    private static string Namespace(int size) => "scale-" + size.ToString(CultureInfo.InvariantCulture);
}
