namespace KvWorker.Bench;

/// <summary>
/// Each operation at each in-flight level against the echo service, the worker with one
/// and with two replicas, and PostgreSQL directly; the four measured back to back per cell
/// and the cells interleaved per round, so all see the same machine. Medians over rounds.
/// </summary>
public sealed class TableScenario(BenchRun run, Deployment deployment)
{
    private const double EchoTarget = 0.9;
    private readonly Dictionary<(Operation, int, string), List<Stats>> _results = [];

    public async Task RunAsync(RpcClient echo, RpcClient oneReplica, RpcClient twoReplicas, CancellationToken cancellationToken)
    {
        var options = run.Options;
        var postgres = new DirectPostgres(deployment.DataSource, Deployment.NamespaceQuotaBytes);
        ILoadTarget[] targets = [echo, oneReplica, twoReplicas, postgres];

        foreach (var target in targets)
            await run.WarmUpAsync(target, cancellationToken);

        var cells = options.Rounds * Workload.Operations.Length * options.InFlight.Length * targets.Length;
        var done = 0;
        for (var round = 1; round <= options.Rounds; round++)
        foreach (var operation in Workload.Operations)
        foreach (var inFlight in options.InFlight)
        foreach (var target in targets)
        {
            // Before kv_get and kv_delete cells, every lane's entries are there (written with SQL, not measured).
            if (operation is Operation.Get or Operation.Delete && target != echo)
                await deployment.FillLanesAsync(target.Name, inFlight, cancellationToken);
            var stats = await Load.MeasureAsync(target, inFlight,
                (lane, sequence) => Workload.LaneRequest(operation, target.Name, lane, sequence),
                options.WarmUp, options.Duration, cancellationToken);
            Results(operation, inFlight, target.Name).Add(stats);
            run.Progress($"cell {++done}/{cells}  round {round}  {Workload.Queue(operation),-12}  in flight {inFlight,2}  {Label(target.Name),-10}  " +
                $"{Format.Rate(stats.RequestsPerSecond),7} req/s  p50 {Format.Ms(stats.P50Ms)} ms  p99 {Format.Ms(stats.P99Ms)} ms" +
                (stats.Errors > 0 ? $"  {stats.Errors} errors: {stats.FirstError}" : ""));
        }
        Report([echo.Name, oneReplica.Name, twoReplicas.Name, postgres.Name]);
    }

    private List<Stats> Results(Operation operation, int inFlight, string target)
    {
        if (!_results.TryGetValue((operation, inFlight, target), out var list))
            _results[(operation, inFlight, target)] = list = [];
        return list;
    }

    private Stats Median(Operation operation, int inFlight, string target) => Stats.Median(Results(operation, inFlight, target));

    private static string Label(string target) => target switch
    {
        "w1" => "1 replica",
        "w2" => "2 replicas",
        _ => target,
    };

    private void Report(string[] names)
    {
        var (echo, one, two, postgres) = (names[0], names[1], names[2], names[3]);
        var report = run.Results;
        report.Section("Operations through RabbitMQ");
        report.Line("Requests per second (median over rounds) and latency in ms (median of each round's p50/p99).");
        report.Line($"Every in-flight request slot is one agent with a namespace of its own, cycling over {Workload.KeysPerNamespace:N0} keys");
        report.Line($"({Workload.KeysPerNamespace:N0} entries are written with SQL before each kv_get and kv_delete cell; a lane that deletes");
        report.Line("more than that in one cell gets deleted:false for the rest). Each request carries a fresh message_id.");
        report.Line("Echo: the same MassTransit set-up answering without a database.");
        report.Line("PostgreSQL: the same SQL function called directly, one statement and one commit per operation,");
        report.Line("with as many connections as requests in flight.");
        foreach (var operation in Workload.Operations)
        {
            var table = new Table(Workload.Queue(operation), "in flight", "echo req/s",
                "1 replica req/s", "p50", "p99", "2 replicas req/s", "p50", "p99", "PostgreSQL req/s",
                "1r/echo", "2r/echo", "1r/PG", "2r/PG");
            foreach (var inFlight in run.Options.InFlight)
            {
                var (e, w1, w2, pg) = (Median(operation, inFlight, echo), Median(operation, inFlight, one),
                    Median(operation, inFlight, two), Median(operation, inFlight, postgres));
                table.Row(inFlight.ToString(System.Globalization.CultureInfo.InvariantCulture), Format.Rate(e.RequestsPerSecond),
                    Format.Rate(w1.RequestsPerSecond), Format.Ms(w1.P50Ms), Format.Ms(w1.P99Ms),
                    Format.Rate(w2.RequestsPerSecond), Format.Ms(w2.P50Ms), Format.Ms(w2.P99Ms),
                    Format.Rate(pg.RequestsPerSecond),
                    Format.Ratio(w1.RequestsPerSecond, e.RequestsPerSecond), Format.Ratio(w2.RequestsPerSecond, e.RequestsPerSecond),
                    Format.Ratio(w1.RequestsPerSecond, pg.RequestsPerSecond), Format.Ratio(w2.RequestsPerSecond, pg.RequestsPerSecond));
            }
            report.Add(table);
        }

        var errors = _results.Where(r => r.Value.Sum(s => s.Errors) > 0).ToList();
        if (errors.Count > 0)
        {
            report.Line("");
            report.Line("Requests answered with an error (they count in the figures above):");
            foreach (var ((operation, inFlight, target), stats) in errors)
                report.Line($"- {Workload.Queue(operation)}, {inFlight} in flight, {Label(target)}: {stats.Sum(s => s.Errors)} errors, e.g. {stats.First(s => s.FirstError is not null).FirstError}");
        }

        var at = run.Options.TargetInFlight;
        report.Section($"Targets at {at} in flight");
        foreach (var operation in Workload.Operations)
        {
            var e = Median(operation, at, echo).RequestsPerSecond;
            var pg = Median(operation, at, postgres).RequestsPerSecond;
            foreach (var target in new[] { one, two })
            {
                var worker = Median(operation, at, target).RequestsPerSecond;
                var verdict = Verdict.AtLeast(worker, EchoTarget * e, $"{Format.Percent(worker / e)} of echo (target {Format.Percent(EchoTarget)})");
                if (operation != Operation.Get)
                    verdict += "; " + Verdict.Above(worker, pg, $"{Format.Ratio(worker, pg)}× PostgreSQL commit-per-operation (target > 1)");
                report.Line($"- {Workload.Queue(operation)}, {Label(target)}: {verdict}");
            }
        }
    }
}

/// <summary>Says whether a target holds and, when it does not, by how much it is missed.</summary>
public static class Verdict
{
    public static string AtLeast(double actual, double required, string what) =>
        actual >= required
            ? $"{what}: holds"
            : $"{what}: MISSED by {Format.Percent((required - actual) / required)} ({Format.Rate(actual)} req/s, {Format.Rate(required)} needed)";

    public static string Above(double actual, double baseline, string what) =>
        actual > baseline
            ? $"{what}: holds"
            : $"{what}: MISSED by {Format.Percent((baseline - actual) / baseline)} ({Format.Rate(actual)} req/s vs {Format.Rate(baseline)})";
}
