using System.Globalization;
using KvWorker.Contracts;

namespace KvWorker.Bench;

/// <summary>A load target with the processes that serve it (none for PostgreSQL straight from the benchmark).</summary>
public sealed record Target(ILoadTarget Load, string Label, int[] Service)
{
    public string Name => Load.Name;
}

/// <summary>
/// Each operation at each in-flight level against the raw RabbitMQ echo, the MassTransit
/// echo service, the worker with one and with two replicas, and PostgreSQL directly; the
/// targets measured back to back per cell and the cells interleaved per round, so all see
/// the same machine. Each lane works in a namespace of its own; at the highest in-flight
/// level the worker and PostgreSQL are also measured with all lanes on one namespace. At
/// that level every cell also records the CPU time per request of PostgreSQL, RabbitMQ,
/// the service and the load generator. Medians over rounds.
/// </summary>
public sealed class TableScenario(BenchRun run, Deployment deployment, CpuMeter cpu)
{
    private const double MutationTarget = 0.7, GetTarget = 0.85, PostgresTarget = 2, PostgresCpuTarget = 60, WorkerCpuTarget = 1.3;
    private readonly Dictionary<(KvOperation, int, Layout, string), List<Stats>> _results = [];

    public async Task RunAsync(Target rawEcho, Target echo, Target oneReplica, Target twoReplicas, CancellationToken cancellationToken)
    {
        var options = run.Options;
        var postgres = new Target(new DirectPostgres(deployment.DataSource, Deployment.NamespaceQuotaBytes), "PostgreSQL", []);
        Target[] targets = [rawEcho, echo, oneReplica, twoReplicas, postgres];
        Target[] stores = [oneReplica, twoReplicas, postgres];
        foreach (var target in targets) await run.WarmUpAsync(target.Load, cancellationToken);
        await deployment.VacuumAsync(cancellationToken);

        // The two worker targets swap places every other round: a target measured right after
        // another runs in a different state of the machine (which one is warmer shows in A/B runs).
        List<(KvOperation Operation, int InFlight, Layout Layout, Target Target)> Cells(int round)
        {
            var (first, second) = round % 2 == 1 ? (oneReplica, twoReplicas) : (twoReplicas, oneReplica);
            Target[] ordered = [rawEcho, echo, first, second, postgres];
            var cells = new List<(KvOperation, int, Layout, Target)>();
            foreach (var operation in options.Operations)
            {
                foreach (var inFlight in options.InFlight)
                    cells.AddRange(ordered.Select(target => (operation, inFlight, Layout.Spread, target)));
                cells.AddRange(ordered.Where(stores.Contains).Select(target => (operation, options.TargetInFlight, Layout.Hot, target)));
            }
            return cells;
        }
        var cellsPerRound = Cells(1).Count;
        var done = 0;
        for (var round = 1; round <= options.Rounds; round++)
        foreach (var (operation, inFlight, layout, target) in Cells(round))
        {
            // Before kv_get and kv_delete cells, every lane's entries are there (written with SQL, not measured).
            var keysPerLane = Workload.KeysPerLaneOf(operation, inFlight);
            if (operation == KvOperations.Get || operation == KvOperations.Delete)
                await deployment.FillLanesAsync(target.Name, inFlight, cancellationToken, layout, keysPerLane);
            var stats = await Load.MeasureAsync(target.Load, inFlight,
                (lane, sequence) => Workload.LaneRequest(operation, target.Name, lane, sequence, layout, keysPerLane),
                options.WarmUp, options.Duration, cancellationToken, () => cpu.Sample(target.Service));
            Results(operation, inFlight, layout, target.Name).Add(stats);
            run.Progress($"cell {++done}/{cellsPerRound * options.Rounds}  round {round}  {operation.Name,-12}  in flight {inFlight,2}  " +
                $"{(layout == Layout.Hot ? "one namespace" : "namespaces"),-13}  {target.Label,-11}  {Format.Rate(stats.RequestsPerSecond),7} req/s  " +
                $"p50 {Format.Ms(stats.P50Ms)} ms  p99 {Format.Ms(stats.P99Ms)} ms" +
                (stats.Cpu is { } c ? $"  cpu µs/req pg {c.Postgres:0} mq {c.RabbitMq:0} svc {c.Service:0} gen {c.LoadGenerator:0}" : "") +
                (stats.Errors > 0 ? $"  {stats.Errors} errors: {stats.FirstError}" : ""));
        }
        Report(rawEcho, echo, oneReplica, twoReplicas, postgres);
    }

    private List<Stats> Results(KvOperation operation, int inFlight, Layout layout, string target)
    {
        if (!_results.TryGetValue((operation, inFlight, layout, target), out var list))
            _results[(operation, inFlight, layout, target)] = list = [];
        return list;
    }

    /// <summary>The medians of a cell; an echo answers alike whatever the layout, so its spread cell stands for both.</summary>
    public Stats Median(KvOperation operation, int inFlight, Layout layout, Target target) =>
        Stats.Median(Results(operation, inFlight, _results.ContainsKey((operation, inFlight, layout, target.Name)) ? layout : Layout.Spread, target.Name));

    private void Report(Target rawEcho, Target echo, Target one, Target two, Target postgres)
    {
        var options = run.Options;
        var at = options.TargetInFlight;
        var report = run.Results;
        report.Section("Operations through RabbitMQ");
        report.Line("Requests per second (median over rounds) and latency in ms (median of each round's p50/p99).");
        report.Line($"Every in-flight request slot is one agent cycling over {Workload.KeysPerLane:N0} keys of its own, in a namespace of its own");
        report.Line($"(\"namespaces\") or, at {at} in flight, also with all lanes in one namespace (\"one namespace\"). Entries are written");
        report.Line("with SQL before each kv_get and kv_delete cell. Each request carries a fresh message_id (a UUIDv7, from KvClient) and the client's user_id.");
        report.Line($"kv_delete's lanes cycle over {Workload.DeleteEntriesPerCell:N0} keys between them at fewer than 64 in flight, so its deletes find their entries.");
        report.Line("Raw echo: a RabbitMQ.Client consumer answering each request with its own body, acknowledging after the reply,");
        report.Line("with the worker's prefetch: what the broker itself allows. Echo: the worker's own MassTransit set-up answering");
        report.Line("without a database. PostgreSQL: the worker's adapter with group commit off, one transaction per operation,");
        report.Line("as many at once as requests in flight.");
        foreach (var operation in options.Operations)
        {
            var table = new Table($"{operation.Name}, a namespace per lane", "in flight", "raw echo req/s", "echo req/s",
                "1 replica req/s", "p50", "p99", $"{two.Label} req/s", "PostgreSQL req/s", "1r/echo", "1r/raw echo", $"{Short}/echo", "1r/PG");
            foreach (var inFlight in options.InFlight)
            {
                var (r, e, w1, w2, pg) = (Median(operation, inFlight, Layout.Spread, rawEcho), Median(operation, inFlight, Layout.Spread, echo),
                    Median(operation, inFlight, Layout.Spread, one), Median(operation, inFlight, Layout.Spread, two),
                    Median(operation, inFlight, Layout.Spread, postgres));
                table.Row(inFlight.ToString(CultureInfo.InvariantCulture), Format.Rate(r.RequestsPerSecond), Format.Rate(e.RequestsPerSecond),
                    Format.Rate(w1.RequestsPerSecond), Format.Ms(w1.P50Ms), Format.Ms(w1.P99Ms), Format.Rate(w2.RequestsPerSecond),
                    Format.Rate(pg.RequestsPerSecond),
                    Format.Ratio(w1.RequestsPerSecond, e.RequestsPerSecond), Format.Ratio(w1.RequestsPerSecond, r.RequestsPerSecond),
                    Format.Ratio(w2.RequestsPerSecond, e.RequestsPerSecond), Format.Ratio(w1.RequestsPerSecond, pg.RequestsPerSecond));
            }
            report.Add(table);
        }

        var hot = new Table($"All lanes on one namespace, {at} in flight", "operation", "echo req/s", "1 replica req/s", "p50", "p99",
            $"{two.Label} req/s", "PostgreSQL req/s", "1r/echo", "1r/PG", "1r hot/spread");
        foreach (var operation in options.Operations)
        {
            var (e, w1, w2, pg, spread) = (Median(operation, at, Layout.Spread, echo), Median(operation, at, Layout.Hot, one),
                Median(operation, at, Layout.Hot, two), Median(operation, at, Layout.Hot, postgres), Median(operation, at, Layout.Spread, one));
            hot.Row(operation.Name, Format.Rate(e.RequestsPerSecond), Format.Rate(w1.RequestsPerSecond), Format.Ms(w1.P50Ms), Format.Ms(w1.P99Ms),
                Format.Rate(w2.RequestsPerSecond), Format.Rate(pg.RequestsPerSecond), Format.Ratio(w1.RequestsPerSecond, e.RequestsPerSecond),
                Format.Ratio(w1.RequestsPerSecond, pg.RequestsPerSecond), Format.Ratio(w1.RequestsPerSecond, spread.RequestsPerSecond));
        }
        report.Add(hot);

        report.Section($"CPU per request at {at} in flight");
        report.Line("Microseconds of CPU (user + system, from /proc/<pid>/stat before and after each measured cell) per request, by process:");
        report.Line("PostgreSQL (the server and all its backends), RabbitMQ (the broker), the service under load (worker or echo process) and");
        report.Line("the load generator (this benchmark, which is also the client of the PostgreSQL baseline). Medians over rounds.");
        report.Line($"The echo also at fewer requests in flight, where its rate comes nearer the worker's at {at}.");
        var cpuTable = new Table("CPU µs per request", "operation", "target", "req/s", "PostgreSQL", "RabbitMQ", "service", "load generator", "total");
        var lowerLevels = options.InFlight.Where(inFlight => inFlight < at).OrderDescending();
        foreach (var operation in options.Operations)
        foreach (var (target, layout, inFlight) in new[] { (rawEcho, Layout.Spread, at), (echo, Layout.Spread, at) }
            .Concat(lowerLevels.Select(inFlight => (echo, Layout.Spread, inFlight)))
            .Concat([(one, Layout.Spread, at), (one, Layout.Hot, at), (two, Layout.Spread, at), (two, Layout.Hot, at), (postgres, Layout.Spread, at)]))
        {
            var stats = Median(operation, inFlight, layout, target);
            if (stats.Cpu is not { } c) continue;
            cpuTable.Row(operation.Name, target.Label + (layout == Layout.Hot ? ", one namespace" : "") + (inFlight != at ? $", {inFlight} in flight" : ""),
                Format.Rate(stats.RequestsPerSecond), Micros(c.Postgres), Micros(c.RabbitMq), Micros(c.Service), Micros(c.LoadGenerator), Micros(c.Total));
        }
        report.Add(cpuTable);

        var errors = _results.Where(r => r.Value.Sum(s => s.Errors) > 0).ToList();
        if (errors.Count > 0)
        {
            report.Line("");
            report.Line("Requests answered with an error (they count in the figures above):");
            foreach (var ((operation, inFlight, layout, target), stats) in errors)
                report.Line($"- {operation.Name}, {inFlight} in flight, {layout}, {target}: {stats.Sum(s => s.Errors)} errors, e.g. {stats.First(s => s.FirstError is not null).FirstError}");
        }

        report.Section($"Targets at {at} in flight (one worker replica)");
        foreach (var operation in options.Operations)
        {
            var e = Median(operation, at, Layout.Spread, echo);
            var required = operation == KvOperations.Get ? GetTarget : MutationTarget;
            foreach (var layout in new[] { Layout.Spread, Layout.Hot })
            {
                var worker = Median(operation, at, layout, one);
                var pg = Median(operation, at, layout, postgres);
                var where = layout == Layout.Hot ? "one namespace" : "a namespace per lane";
                var verdict = Verdict.AtLeast(worker.RequestsPerSecond, required * e.RequestsPerSecond,
                    $"{Format.Ratio(worker.RequestsPerSecond, e.RequestsPerSecond)}× echo (target ≥ {required.ToString("0.0#", CultureInfo.InvariantCulture)})");
                if (operation != KvOperations.Get)
                    verdict += "; " + Verdict.AtLeast(worker.RequestsPerSecond, PostgresTarget * pg.RequestsPerSecond,
                        $"{Format.Ratio(worker.RequestsPerSecond, pg.RequestsPerSecond)}× PostgreSQL commit-per-operation (target ≥ {PostgresTarget})");
                if (worker.Cpu is { } c && e.Cpu is { } echoCpu)
                {
                    if (operation != KvOperations.Get)
                        verdict += "; " + Verdict.AtMost(c.Postgres, PostgresCpuTarget, $"PostgreSQL {Micros(c.Postgres)} µs/request (target ≤ {PostgresCpuTarget})");
                    verdict += "; " + Verdict.AtMost(c.Service, WorkerCpuTarget * echoCpu.Service,
                        $"worker {Micros(c.Service)} µs/request = {Format.Ratio(c.Service, echoCpu.Service)}× echo's {Micros(echoCpu.Service)} (target ≤ {WorkerCpuTarget})");
                }
                report.Line($"- {operation.Name}, {where}: {verdict}");
            }
        }

        if (options.PlotPathPrefix is { } prefix)
        {
            var files = Plots.Draw(prefix, options.TargetInFlight, options.Operations, this, rawEcho, echo, one, postgres);
            report.Section("Plots");
            foreach (var file in files) report.Line($"![{Path.GetFileNameWithoutExtension(file)}]({Path.GetFileName(file)})");
        }
    }

    /// <summary>The second worker target in a ratio's name: 2r (two replicas) or v (the variant).</summary>
    private string Short => run.Options.Variant is null ? "2r" : "v";

    private static string Micros(double value) => value.ToString("0", CultureInfo.InvariantCulture);
}

/// <summary>Says whether a target holds and, when it does not, by how much it is missed.</summary>
public static class Verdict
{
    public static string AtLeast(double actual, double required, string what) =>
        actual >= required
            ? $"{what}: holds"
            : $"{what}: MISSED by {Format.Percent((required - actual) / required)}";

    public static string AtMost(double actual, double limit, string what) =>
        actual <= limit
            ? $"{what}: holds"
            : $"{what}: MISSED by {Format.Percent((actual - limit) / limit)}";
}
