using System.Globalization;
using KvWorker.Contracts;

namespace KvWorker.Bench;

/// <summary>Command-line options; <see cref="Usage"/> lists them.</summary>
public sealed class BenchOptions
{
    public const string Usage = """
        Usage: KvWorker.Bench [options]        (scripts/bench.sh passes its arguments here)

          --quick               smoke run of two to three minutes: 1 round, 1 s per cell,
                                100,000 expired entries to purge, 60 s of soak if asked for
          --rounds N            rounds of the operation table and scaling (default 3)
          --duration S          seconds measured per cell (default 5)
          --warmup S            seconds of load before each cell is measured (default 1)
          --in-flight LIST      requests in flight (default 1,16,64)
          --operations LIST     the operation table's operations (default kv_set,kv_get,kv_increment,kv_delete)
          --settings LIST       worker settings (key=value,...) of the 1-replica target of the table and scaling,
                                e.g. tools:kv_store:adapters:postgres:group_commit:transactions=1
          --variant LIST        the table's second worker target is one replica with these worker settings
                                (key=value,...) instead of two replicas: a setting measured side by side;
                                in either list bench:postgres_host=DIR connects that worker to the database
                                through another host, e.g. /tmp for PostgreSQL's Unix socket there, and
                                bench:worker=PATH runs another build of the worker (its KvWorker.dll;
                                relative paths, here and in --markdown, start at the repository's root)
          --scenarios LIST      any of table,scaling,profile,purge,soak (default table,scaling,profile,purge);
                                profile samples the worker with perf (Debian's linux-perf)
          --purge-entries N     expired entries the purge scenario removes (default 1000000)
          --soak S              memory soak of S seconds (600 for the record); alone it runs
                                only the soak, with --scenarios it joins the list
          --markdown PATH       write the report as Markdown too (e.g. docs/benchmarks.md), and the
                                operation table's plots as PNG files beside it
          --help                this text
        """;

    public bool Quick { get; private set; }
    public int Rounds { get; private set; } = 3;
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(5);
    public TimeSpan WarmUp { get; private set; } = TimeSpan.FromSeconds(1);

    /// <summary>Mixed load on each target before its first measurement.</summary>
    public TimeSpan StartUpWarmUp { get; private set; } = TimeSpan.FromSeconds(10);
    public int[] InFlight { get; private set; } = [1, 16, 64];

    /// <summary>The operations of the operation table, in the order a round measures them.</summary>
    public KvOperation[] Operations { get; private set; } = Workload.Operations;

    /// <summary>Worker settings of the 1-replica target (configuration keys, as in appsettings.json).</summary>
    public Dictionary<string, string?> WorkerSettings { get; private set; } = [];

    /// <summary>Settings of the table's second worker target, one replica, instead of two replicas of the defaults; null without --variant.</summary>
    public Dictionary<string, string?>? Variant { get; private set; }
    public HashSet<string> Scenarios { get; private set; } = ["table", "scaling", "profile", "purge"];
    public int PurgeEntries { get; private set; } = 1_000_000;
    public TimeSpan Soak { get; private set; } = TimeSpan.FromSeconds(600);
    public string? MarkdownPath { get; private set; }

    /// <summary>
    /// Where the plots go: beside the Markdown report, named after it (docs/benchmarks.md: docs/benchmarks-cpu.png, ...),
    /// so reports in one directory keep their own; none without a report.
    /// </summary>
    public string? PlotPathPrefix => MarkdownPath is null ? null : Path.ChangeExtension(Path.GetFullPath(MarkdownPath), null);
    public bool Help { get; private set; }

    /// <summary>The in-flight level the targets are judged at: the highest measured.</summary>
    public int TargetInFlight => InFlight.Max();

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        var scenarios = new List<string>();
        TimeSpan? soak = null;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            double Number() => double.Parse(Value(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--quick":
                    options.Quick = true;
                    options.Rounds = 1;
                    options.Duration = TimeSpan.FromSeconds(1);
                    options.WarmUp = TimeSpan.FromSeconds(0.5);
                    options.StartUpWarmUp = TimeSpan.FromSeconds(3);
                    options.PurgeEntries = 100_000;
                    options.Soak = TimeSpan.FromSeconds(60);
                    break;
                case "--rounds": options.Rounds = (int)Number(); break;
                case "--duration": options.Duration = TimeSpan.FromSeconds(Number()); break;
                case "--warmup": options.WarmUp = TimeSpan.FromSeconds(Number()); break;
                case "--in-flight": options.InFlight = Value().Split(',').Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--operations": options.Operations = Value().Split(',').Select(TableOperation).ToArray(); break;
                case "--settings": options.WorkerSettings = Settings(Value()); break;
                case "--variant": options.Variant = Settings(Value()); break;
                case "--scenarios": scenarios.AddRange(Value().Split(',')); break;
                case "--purge-entries": options.PurgeEntries = (int)Number(); break;
                case "--soak":
                    soak = TimeSpan.FromSeconds(Number());
                    scenarios.Add("soak");
                    break;
                case "--markdown": options.MarkdownPath = Value(); break;
                case "--help" or "-h": options.Help = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (soak is not null) options.Soak = soak.Value;
        if (scenarios.Count > 0) options.Scenarios = scenarios.ToHashSet();
        var unknown = options.Scenarios.Except(["table", "scaling", "profile", "purge", "soak"]).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"unknown scenario {string.Join(", ", unknown)}");
        if (options.Rounds < 1 || options.Duration <= TimeSpan.Zero || options.InFlight.Any(n => n < 1))
            throw new ArgumentException("rounds, duration and in-flight counts must be positive");
        // Checked now rather than when the report is written, at the end of a long run.
        if (options.PlotPathPrefix is { } plots && Path.GetDirectoryName(plots) is { } directory && !Directory.Exists(directory))
            throw new ArgumentException($"--markdown {options.MarkdownPath}: no directory {directory}");
        return options;
    }

    private static Dictionary<string, string?> Settings(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(setting => setting.Split('=', 2) is [var key, var value]
                ? (key.Trim(), value.Trim())
                : throw new ArgumentException($"{setting}: a setting is key=value"))
            .ToDictionary(setting => setting.Item1, setting => (string?)setting.Item2);

    private static KvOperation TableOperation(string name) =>
        Workload.Operations.FirstOrDefault(operation => operation.Name == name)
        ?? throw new ArgumentException($"--operations: {name} is not one of {string.Join(", ", Workload.Operations.Select(o => o.Name))}");

    /// <summary>What heads the Markdown report: how it was made, and a warning when the run was a quick one.</summary>
    public string Introduction(string[] args)
    {
        var command = $"Written by `bash scripts/bench.sh {string.Join(' ', args)}`; see the README's Benchmark section.";
        return Quick
            ? command + "\n\n**Quick run**: one round of one second per cell, a smoke run of the benchmark rather than a measurement; " +
              "the full run (`bash scripts/bench.sh --markdown docs/benchmarks.md`) takes three rounds of five seconds."
            : command;
    }

    /// <summary>The settings in one line, for the report.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{(Quick ? "quick run, " : "")}{Rounds} round(s), {Duration.TotalSeconds} s measured per cell after {WarmUp.TotalSeconds} s of warm-up, " +
        $"in flight {string.Join("/", InFlight)}, operations {string.Join("/", Operations.Select(o => o.Name))}, scenarios {string.Join(", ", Scenarios.Order())}") +
        (WorkerSettings.Count > 0 ? $", 1 replica with {Listed(WorkerSettings)}" : "") +
        (Variant is not null ? $", variant: 1 replica with {Listed(Variant)}" : "");

    private static string Listed(Dictionary<string, string?> settings) => string.Join(", ", settings.Select(s => $"{s.Key}={s.Value}"));
}
